// resume_bench: how long resuming a large run takes.
//
// Runs a 1,000-step chain whose last step fails, then measures, several
// times, a resume that has 999 steps done: from opening the store to the
// moment the remaining step has started (its attempt committed and its
// process spawned). The floor, measured in the same run: opening the same
// database and reading its 1,000 step rows with plain SQLite.
// Target (docs/performance.md): <= 3x the open-and-read floor.
// Run by hand: `ninja -C build bench/resume_bench && build/bench/resume_bench`.
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "engine/engine.h"
#include "workflows/loader.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace hearth;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU time of the calling thread (the loop's), in ms: what the resume costs
// apart from waiting on the disk and on other processes.
double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Stops timing when the named step starts.
struct StartWatch : engine::Observer {
  std::string step;
  Clock::time_point started{};
  double started_cpu = 0;
  void on_event(const engine::EventRecord& e) override {
    if (e.type == "step.started" && e.step_id == step && started == Clock::time_point{}) {
      started = Clock::now();
      started_cpu = thread_cpu_ms();
    }
  }
  void on_output(const std::string&, const std::string&, std::string_view) override {}
};

// Opens `store_path`, runs or resumes, and returns when the run finishes.
template <class Begin>
void drive(const std::string& store_path, StartWatch* watch, Begin begin) {
  auto store = engine::Store::open(store_path);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.message().c_str());
    std::exit(1);
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto sandbox = sandbox::make_local_sandbox();
  {
    engine::Engine engine(&loop, **store, *sandbox);
    if (watch) engine.add_observer(watch);
    auto id = begin(engine);
    if (!id) {
      std::fprintf(stderr, "%s\n", id.message().c_str());
      std::exit(1);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = argc > 1 ? std::atoi(argv[1]) : 1000;
  int repeat = argc > 2 ? std::atoi(argv[2]) : 7;
  char tmpl[] = "/tmp/hearth-resume-bench-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::string store_path = (dir / "state.db").string();
  std::string last = "s" + std::to_string(steps - 1);

  std::string text;
  for (int i = 0; i < steps; ++i) {
    text += "[[steps]]\nid = \"s" + std::to_string(i) + "\"\n";
    if (i > 0) text += "needs = [\"s" + std::to_string(i - 1) + "\"]\n";
    text += i == steps - 1 ? "run = \"test -f ok\"\n" : "run = \"true\"\n";
  }
  auto loaded = workflows::load_workflow_text(text, (dir / "chain.toml").string());
  if (!loaded.ok()) return 1;

  auto t0 = Clock::now();
  drive(store_path, nullptr, [&](engine::Engine& e) {
    hearth::StartOptions o;
    o.run_id = "bench";
    o.repo = dir.string();
    return e.start(*loaded.workflow, nlohmann::json::object(), o, [](const hearth::RunResult&) {});
  });
  std::printf("resume_bench: %d-step chain, first run (last step fails) took %.0f ms\n", steps, ms(Clock::now() - t0));
  std::ofstream(dir / "ok") << "";

  std::vector<double> resume_ms, resume_cpu_ms;
  for (int r = 0; r < repeat; ++r) {
    StartWatch watch;
    watch.step = last;
    double begin_cpu = thread_cpu_ms();
    auto begin = Clock::now();
    drive(store_path, &watch, [&](engine::Engine& e) {
      hearth::ResumeOptions o;
      if (r > 0) o.from = {last};  // after the first resume the run has succeeded
      return e.resume("bench", o, nullptr, [](const hearth::RunResult&) {});
    });
    resume_ms.push_back(ms(watch.started - begin));
    resume_cpu_ms.push_back(watch.started_cpu - begin_cpu);
  }

  // The floor reads the rows in workflow order (a sort: the table is kept
  // in step id order). A resume reads them in key order, without the sort;
  // the floor read that way too is printed beside it.
  std::vector<double> floor_ms, floor_cpu_ms, key_order_ms;
  for (int r = 0; r < repeat; ++r) {
    for (bool sorted : {true, false}) {
      double begin_cpu = thread_cpu_ms();
      auto begin = Clock::now();
      sqlite3* db = nullptr;
      sqlite3_open(store_path.c_str(), &db);
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db,
                         sorted ? "SELECT * FROM steps WHERE run_id='bench' ORDER BY position"
                                : "SELECT * FROM steps WHERE run_id='bench'",
                         -1, &st, nullptr);
      int rows = 0;
      while (sqlite3_step(st) == SQLITE_ROW) ++rows;
      sqlite3_finalize(st);
      sqlite3_close(db);
      if (rows != steps) return 1;
      (sorted ? floor_ms : key_order_ms).push_back(ms(Clock::now() - begin));
      if (sorted) floor_cpu_ms.push_back(thread_cpu_ms() - begin_cpu);
    }
  }
  // The store's own read of what a resume needs: its share of the resume.
  std::vector<double> read_cpu_ms, full_cpu_ms;
  for (int r = 0; r < repeat; ++r) {
    for (bool full : {false, true}) {
      double begin_cpu = thread_cpu_ms();
      auto store = engine::Store::open(store_path);
      if (!store) return 1;
      auto read = full ? (*store)->load_steps("bench") : (*store)->load_steps_to_resume("bench");
      if (!read || read->size() != static_cast<size_t>(steps)) return 1;
      (full ? full_cpu_ms : read_cpu_ms).push_back(thread_cpu_ms() - begin_cpu);
    }
  }
  double resume = median(resume_ms), floor = median(floor_ms);
  std::printf("  floor: open the database, read its %d step rows     %8.2f ms (median of %d)\n", steps, floor, repeat);
  std::printf("  resume with %d of %d steps done, open to the last   %8.2f ms (median of %d)\n", steps - 1, steps, resume,
              repeat);
  std::printf("    step's start                                      %.1fx the floor (target <= 3x)\n",
              resume / floor);
  double key_order = median(key_order_ms);
  std::printf("  the floor without its sort (rows in key order)             %8.2f ms: the resume %.1fx that\n",
              key_order, resume / key_order);
  double resume_cpu = median(resume_cpu_ms), floor_cpu = median(floor_cpu_ms);
  std::printf("  CPU of the loop thread: floor %.2f ms, resume %.2f ms: %.1fx (the rest of the resume's time is\n"
              "    waiting: for the commit to reach the disk, and for the CPU)\n",
              floor_cpu, resume_cpu, resume_cpu / floor_cpu);
  std::printf("  CPU of opening the store and reading the steps: as a resume does %.2f ms, every attempt and\n"
              "    output tail (load_steps) %.2f ms\n",
              median(read_cpu_ms), median(full_cpu_ms));
  std::filesystem::remove_all(dir);
  return 0;
}
