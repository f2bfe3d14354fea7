// What a checkpoint costs the run store, in two shapes.
//
// `checkpoint_bench steps [steps=1000]`: a step's checkpoint, as a chain of
// steps writes it (Run::record_outcome then Run::start_attempt, one
// transaction): one step's attempt finished, the step succeeded and its
// event, the next step's attempt and row and its event. Each commit
// synchronous=FULL (one fsync), as the store is on its own. Against the
// floor, alternated commit by commit: one bare FULL commit of a ~200-byte
// row into a database beside it. After each commit (outside the timing) a
// second connection checkpoints the log and reads how many pages the
// commit wrote to it; both sides are checkpointed alike.
//
// `checkpoint_bench [turns=200] [bytes=300]`: an agent checkpoint as a
// conversation grows:
// each turn adds two messages (the assistant's tool call and its result,
// ~`bytes` each) and is checkpointed twice, as the engine does. Two ways:
//   append: the new messages as rows, plus the small state row (what the
//           engine does: Store::append_checkpoint);
//   whole:  the whole state in one row every time (Store::save_checkpoint
//           with every message, what schema 5 did).
// Each checkpoint is one transaction with synchronous=FULL (one fsync), as
// in a run. Prints per-checkpoint p50 for the first and last 20 turns.
//
//   build/bench/checkpoint_bench [turns=200] [bytes=300]
//   build/bench/checkpoint_bench steps [steps=1000]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/store.h"

using hearth::Status;
using hearth::engine::AttemptRecord;
using hearth::engine::StepRecord;
using hearth::engine::Store;
using Clock = std::chrono::steady_clock;

namespace {

double p50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

nlohmann::json message(int i, int bytes) {
  return {{"role", i % 2 ? "user" : "assistant"}, {"content", std::string(static_cast<size_t>(bytes), 'a' + i % 26)}};
}

// Per-checkpoint milliseconds of one conversation of `turns` turns.
std::vector<double> run(Store& store, const std::string& run_id, bool append, int turns, int bytes) {
  nlohmann::json header = {{"hearth_agent_state", 1}, {"system", std::string(2000, 's')}, {"turns", 0}};
  nlohmann::json messages = nlohmann::json::array();
  messages.push_back(message(1, bytes));
  std::vector<double> ms;
  size_t stored = 0;
  for (int t = 1; t <= turns; ++t) {
    for (int half = 0; half < 2; ++half) {  // the intent, then the turn complete
      messages.push_back(message(static_cast<int>(messages.size()), bytes));
      header["turns"] = t;
      auto start = Clock::now();
      (void)store.begin();
      Status s;
      if (append) {
        nlohmann::json fresh = nlohmann::json::array();
        for (size_t i = stored; i < messages.size(); ++i) fresh.push_back(messages[i]);
        s = store.append_checkpoint(run_id, "agent", 1, t, header, fresh, stored);
      } else {
        nlohmann::json state = header;
        state["messages"] = messages;
        s = store.save_checkpoint(run_id, "agent", 1, t, state);
      }
      if (!s.ok() || !store.commit().ok()) {
        std::fprintf(stderr, "checkpoint failed: %s\n", s.ok() ? "commit" : s.message().c_str());
        std::exit(1);
      }
      stored = messages.size();
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
  return ms;
}


// Pages in the log since the last call, which checkpoints them (PASSIVE:
// with no reader in the way the next commit starts the log over).
int log_pages(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int pages = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    pages = sqlite3_column_int(st, 1);
  sqlite3_finalize(st);
  return pages;
}

int page_size(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int size = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    size = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return size;
}

void must(const Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
  std::exit(1);
}

// The writes of one chain step's checkpoint: `done` finished, `next` started.
void step_checkpoint(Store& store, const std::string& run, std::vector<StepRecord>& steps, size_t done, int64_t& seq) {
  int64_t now = hearth::engine::now_ms();
  StepRecord& d = steps[done];
  AttemptRecord a{d.id, 1, *d.started_at, now, 0, 0, "exited", "", 0};
  d.status = hearth::StepStatus::succeeded;
  d.exit_code = 0;
  d.finished_at = now;
  must(store.finish_attempt(run, a), "finish_attempt");
  must(store.update_step(run, d), "update_step");
  must(store.insert_event({run, ++seq, now, "step.succeeded", d.id,
                           {{"attempt", 1}, {"exit_code", 0}, {"duration_ms", 1}, {"outputs", nlohmann::json::object()}}}),
       "insert_event");
  if (done + 1 == steps.size()) return;
  StepRecord& n = steps[done + 1];
  n.status = hearth::StepStatus::running;
  n.attempts = 1;
  n.started_at = now;
  must(store.insert_attempt(run, AttemptRecord{n.id, 1, now, {}, {}, 0, "", "", 0}), "insert_attempt");
  must(store.update_step(run, n), "update_step");
  must(store.insert_event({run, ++seq, now, "step.started", n.id, {{"attempt", 1}}}), "insert_event");
}

int bench_steps(const std::filesystem::path& dir, int count) {
  std::string path = (dir / "state.db").string();
  auto opened = Store::open(path);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.message().c_str());
    return 1;
  }
  Store& store = **opened;
  // The floor: its own database, same directory, same settings.
  sqlite3 *floor = nullptr, *floor_log = nullptr, *log = nullptr;
  std::string floor_path = (dir / "floor.db").string();
  sqlite3_open(floor_path.c_str(), &floor);
  sqlite3_exec(floor, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (v TEXT)", nullptr, nullptr,
               nullptr);
  sqlite3_open(floor_path.c_str(), &floor_log);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(floor, "INSERT INTO t VALUES (?)", -1, &insert, nullptr);
  std::string row(200, 'r');

  std::string run = "bench";
  std::vector<StepRecord> steps(static_cast<size_t>(count));
  int64_t seq = 0;
  must(store.begin(), "begin");
  hearth::engine::RunRecord record;
  record.id = run;
  record.workflow = "chain";
  record.created_at = hearth::engine::now_ms();
  must(store.insert_run(record), "insert_run");
  for (int i = 0; i < count; ++i) {
    steps[static_cast<size_t>(i)].id = "s" + std::to_string(i);
    steps[static_cast<size_t>(i)].position = i;
    must(store.insert_step(run, steps[static_cast<size_t>(i)]), "insert_step");
  }
  steps[0].status = hearth::StepStatus::running;
  steps[0].attempts = 1;
  steps[0].started_at = hearth::engine::now_ms();
  must(store.insert_attempt(run, AttemptRecord{"s0", 1, *steps[0].started_at, {}, {}, 0, "", "", 0}), "insert_attempt");
  must(store.update_step(run, steps[0]), "update_step");
  must(store.commit(), "commit");
  sqlite3_open(path.c_str(), &log);
  log_pages(log);

  std::vector<double> step_ms, floor_ms, step_pages, floor_pages;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto start = Clock::now();
    must(store.begin(), "begin");
    step_checkpoint(store, run, steps, i, seq);
    must(store.commit(), "commit");
    step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    step_pages.push_back(log_pages(log));

    start = Clock::now();
    sqlite3_bind_text(insert, 1, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    if (sqlite3_step(insert) != SQLITE_DONE) return 1;
    sqlite3_reset(insert);
    floor_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    floor_pages.push_back(log_pages(floor_log));
  }
  sqlite3_finalize(insert);
  const int step_page_size = page_size(log), floor_page_size = page_size(floor_log);
  sqlite3_close(log);
  sqlite3_close(floor_log);
  sqlite3_close(floor);
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
  };
  // A log frame: its header and a page (the store's page size; the floor's is SQLite's default).
  const double frame = step_page_size + 24, floor_frame = floor_page_size + 24;
  std::printf("%d chain steps, one checkpoint each, synchronous=FULL, alternated with a bare commit\n", count);
  std::printf("  bare FULL commit of a 200-byte row   p50 %.3f ms  mean %.3f ms  %.2f pages (%.0f bytes) to the log\n",
              p50(floor_ms), mean(floor_ms), mean(floor_pages), mean(floor_pages) * floor_frame);
  std::printf("  step checkpoint                      p50 %.3f ms  mean %.3f ms  %.2f pages (%.0f bytes) to the log\n",
              p50(step_ms), mean(step_ms), mean(step_pages), mean(step_pages) * frame);
  std::printf("  checkpoint / bare commit: p50 %.2fx, mean %.2fx (target <= 1.3x; <= 8 KB a step)\n",
              p50(step_ms) / p50(floor_ms), mean(step_ms) / mean(floor_ms));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "steps") == 0) {
    auto dir = std::filesystem::temp_directory_path() / ("hearth-step-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    int rc = bench_steps(dir, argc > 2 ? std::atoi(argv[2]) : 1000);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return rc;
  }
  int turns = argc > 1 ? std::atoi(argv[1]) : 200;
  int bytes = argc > 2 ? std::atoi(argv[2]) : 300;
  auto dir = std::filesystem::temp_directory_path() / ("hearth-checkpoint-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto store = Store::open((dir / "state.db").string());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.message().c_str());
    return 1;
  }
  std::printf("%d turns, 2 checkpoints a turn, messages of %d bytes, synchronous=FULL\n", turns, bytes);
  for (bool append : {true, false}) {
    auto ms = run(**store, append ? "append" : "whole", append, turns, bytes);
    size_t edge = std::min<size_t>(40, ms.size() / 2);
    std::vector<double> first(ms.begin(), ms.begin() + static_cast<long>(edge));
    std::vector<double> last(ms.end() - static_cast<long>(edge), ms.end());
    std::printf("%-7s checkpoint p50: first 20 turns %.3f ms, last 20 turns %.3f ms, all %.3f ms\n",
                append ? "append" : "whole", p50(first), p50(last), p50(ms));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
