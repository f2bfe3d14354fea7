// The SQLite store's steps, attempts and events: the rows a step's
// checkpoint writes (schema 10, store.cpp's migrations).
//
// A chain step's checkpoint finishes one step's attempt and starts the
// next's, with an event for each, in one transaction; it dirties two pages:
// - steps: a step's row holds its last attempt (attempt, attempt_*), so
//   finishing and starting an attempt update the step rows, which sit side
//   by side in the (run_id, step_id) b-tree. When an attempt starts on a
//   step that had one, the earlier one moves to attempts (retries only).
// - events: a rowid table keyed by number * 2^32 + seq, where number is the
//   run's own (runs.number): the newest run's events go on the table's last
//   page and fill it before a new one is begun.
// An attempt's output tail is a row of attempt_tails, written only when the
// attempt printed something; resume reads no tail and no earlier attempt.
#include <sqlite3.h>

#include <algorithm>
#include <unordered_map>

#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

namespace {
constexpr int64_t kRunSpan = int64_t{1} << 32;  // event keys per run
constexpr int64_t kMaxSeq = kRunSpan - 1;
}  // namespace

Status SqliteStore::in_transaction(const std::function<Status()>& body) {
  if (on_pool_ || in_transaction_) return body();  // the pool runs it inside the batch's transaction
  if (auto s = begin(); !s.ok()) return s;
  Status s = body();
  if (!s.ok()) {
    rollback();
    return s;
  }
  return commit();
}

Result<std::optional<int64_t>> SqliteStore::run_number(const std::string& run_id, const char* what) {
  std::optional<int64_t> number;
  auto s = rows("SELECT number FROM runs WHERE id=?", what, [&](sqlite3_stmt* st) { number = col_opt(st, 0); }, run_id);
  if (!s.ok()) return s.error();
  return number;
}

// A step row grows by about 12 bytes when its first attempt starts (two
// times) and 20 more when it ends (two times, a reason, a longer status):
// `slack` holds that room from the start, so the page the row sits on, which
// the rows inserted beside it filled, never overflows on its way.
Status SqliteStore::insert_step(const std::string& run_id, const StepRecord& s) {
  return stage([this, run_id, id = s.id, position = s.position, status = s.status] {
    return write("INSERT INTO steps (run_id, step_id, position, status, slack) VALUES (?,?,?,?, zeroblob(32))",
                 "cannot record a step", run_id, id, position, status);
  });
}

Status SqliteStore::update_step(const std::string& run_id, const StepRecord& s) {
  // Only what the row holds is copied (the JSON already as text).
  return stage([this, run_id, id = s.id, status = s.status, attempts = s.attempts, exit_code = s.exit_code,
                started_at = s.started_at, finished_at = s.finished_at, outputs = to_db_json(s.outputs),
                reason = s.reason, retry_at = s.retry_at, failures = s.failures, interruptions = s.interruptions,
                result = s.result.is_null() ? std::nullopt : std::optional<std::string>(to_db_json(s.result))] {
    return write(
        "UPDATE steps SET status=?, attempts=?, exit_code=?, started_at=?, finished_at=?, outputs=?, reason=?, "
        "retry_at=?, failures=?, interruptions=?, result=? WHERE run_id=? AND step_id=?",
        "cannot update a step", status, attempts, exit_code, started_at, finished_at, outputs, reason, retry_at,
        failures, interruptions, result, run_id, id);
  });
}

Status SqliteStore::insert_attempt(const std::string& run_id, const AttemptRecord& record) {
  return stage([this, run_id, a = record] { return insert_attempt_now(run_id, a); });
}

Status SqliteStore::insert_attempt_now(const std::string& run_id, const AttemptRecord& a) {
  return in_transaction([&]() -> Status {
    // The step's last attempt so far joins the earlier ones.
    if (auto s = write(
            "INSERT INTO attempts (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, "
            "output_bytes) SELECT run_id, step_id, attempt, attempt_started_at, attempt_finished_at, "
            "attempt_exit_code, attempt_signal, attempt_reason, attempt_output_bytes FROM steps "
            "WHERE run_id=? AND step_id=? AND attempt>0 AND attempt<?",
            "cannot record an attempt", run_id, a.step_id, a.number);
        !s.ok())
      return s;
    if (auto s = write(
            "UPDATE steps SET attempt=?, attempt_started_at=?, attempt_finished_at=NULL, attempt_exit_code=NULL, "
            "attempt_signal=0, attempt_reason='', attempt_output_bytes=0, slack=iif(slack IS NULL, NULL, zeroblob(20)) "
            "WHERE run_id=? AND step_id=? AND attempt<?",
            "cannot record an attempt", a.number, a.started_at, run_id, a.step_id, a.number);
        !s.ok())
      return s;
    if (sqlite3_changes(db_) == 0)
      return fail_with("cannot record attempt " + std::to_string(a.number) + " of step '" + a.step_id + "' of run '" +
                       run_id + "': the step is not recorded, or has that attempt already");
    return {};
  });
}

Status SqliteStore::finish_attempt(const std::string& run_id, const AttemptRecord& record) {
  return stage([this, run_id, a = record] { return finish_attempt_now(run_id, a); });
}

Status SqliteStore::finish_attempt_now(const std::string& run_id, const AttemptRecord& a) {
  static const char* kWhat = "cannot record an attempt's outcome";
  return in_transaction([&]() -> Status {
    auto s = write(
        "UPDATE steps SET attempt_finished_at=?, attempt_exit_code=?, attempt_signal=?, attempt_reason=?, "
        "attempt_output_bytes=?, slack=NULL WHERE run_id=? AND step_id=? AND attempt=?",
        kWhat, a.finished_at, a.exit_code, a.signal, a.reason, a.output_bytes, run_id, a.step_id, a.number);
    if (!s.ok()) return s;
    if (sqlite3_changes(db_) == 0) {  // not the step's last attempt
      s = write(
          "UPDATE attempts SET finished_at=?, exit_code=?, signal=?, reason=?, output_bytes=? "
          "WHERE run_id=? AND step_id=? AND number=?",
          kWhat, a.finished_at, a.exit_code, a.signal, a.reason, a.output_bytes, run_id, a.step_id, a.number);
      if (!s.ok() || sqlite3_changes(db_) == 0) return s;  // no such attempt: nothing to record, as before
    }
    // An empty tail is no row; a stored one is kept.
    if (a.output_tail.empty()) return {};
    return write("INSERT OR REPLACE INTO attempt_tails (run_id, step_id, number, tail) VALUES (?,?,?,?)", kWhat,
                 run_id, a.step_id, a.number, Blob{a.output_tail});
  });
}

Status SqliteStore::insert_event(const EventRecord& record) {
  return stage([this, e = record] { return insert_event_now(e); });
}

Status SqliteStore::insert_event_now(const EventRecord& e) {
  if (auto s = failure(); !s.ok()) return s;
  if (e.seq < 0 || e.seq > kMaxSeq)
    return fail_with("cannot record event " + std::to_string(e.seq) + " of run '" + e.run_id +
                     "': a run's events are numbered 0 to " + std::to_string(kMaxSeq));
  auto s = write(
      "INSERT INTO events (key, at, type, step_id, data) SELECT number * 4294967296 + ?, ?, ?, ?, ? FROM runs "
      "WHERE id=?",
      "cannot record an event", e.seq, e.at, e.type, e.step_id, to_db_json(e.data), e.run_id);
  if (!s.ok()) return s;
  if (sqlite3_changes(db_) == 0) return fail_with("cannot record an event of run '" + e.run_id + "': no such run");
  return {};
}

Result<int64_t> SqliteStore::last_event_seq(const std::string& run_id) {
  auto number = run_number(run_id, "cannot read events");
  if (!number) return number.error();
  if (!*number) return int64_t{0};
  int64_t base = **number * kRunSpan, seq = 0;
  auto s = rows("SELECT key FROM events WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1", "cannot read events",
                [&](sqlite3_stmt* st) { seq = sqlite3_column_int64(st, 0) - base; }, base, base + kMaxSeq);
  if (!s.ok()) return s.error();
  return seq;
}

Result<std::vector<EventRecord>> SqliteStore::load_events(const std::string& run_id, int64_t after_seq) {
  std::vector<EventRecord> out;
  auto number = run_number(run_id, "cannot read events");
  if (!number) return number.error();
  if (!*number || after_seq >= kMaxSeq) return out;
  int64_t base = **number * kRunSpan;
  auto s = rows(
      "SELECT key, at, type, step_id, data FROM events WHERE key BETWEEN ? AND ? ORDER BY key", "cannot read events",
      [&](sqlite3_stmt* st) {
        EventRecord& e = out.emplace_back();
        e.run_id = run_id;
        read_all(st, e.seq, e.at, e.type, e.step_id, e.data);
        e.seq -= base;
      },
      base + std::max<int64_t>(after_seq + 1, 0), base + kMaxSeq);
  if (!s.ok()) return s.error();
  return out;
}

Result<std::vector<StepRecord>> SqliteStore::read_steps(const std::string& run_id, bool in_order) {
  // The rows are kept in step id order (the key): in workflow order they
  // go through a sort, which a resume (it places each row by its id) skips.
#define HEARTH_STEP_COLUMNS                                                                                    \
  "SELECT step_id, position, status, attempts, exit_code, started_at, finished_at, outputs, reason, retry_at, " \
  "failures, interruptions, result, attempt, attempt_started_at, attempt_finished_at, attempt_exit_code, "      \
  "attempt_signal, attempt_reason, attempt_output_bytes FROM steps WHERE run_id=?"
  static constexpr const char* kOrdered = HEARTH_STEP_COLUMNS " ORDER BY position";
  static constexpr const char* kByKey = HEARTH_STEP_COLUMNS;
#undef HEARTH_STEP_COLUMNS
  std::vector<StepRecord> steps;
  auto s = rows(
      in_order ? kOrdered : kByKey,
      "cannot read steps",
      [&](sqlite3_stmt* st) {
        StepRecord& x = steps.emplace_back();
        AttemptRecord a;
        std::optional<int64_t> started;
        read_all(st, x.id, x.position, x.status, x.attempts, x.exit_code, x.started_at, x.finished_at, x.outputs,
                 x.reason, x.retry_at, x.failures, x.interruptions, x.result, a.number, started, a.finished_at,
                 a.exit_code, a.signal, a.reason, a.output_bytes);
        if (a.number <= 0) return;
        a.step_id = x.id;
        a.started_at = started.value_or(0);
        x.attempt_list.push_back(std::move(a));
      },
      run_id);
  if (!s.ok()) return s.error();
  return steps;
}

Result<std::vector<StepRecord>> SqliteStore::load_steps_to_resume(const std::string& run_id) {
  return read_steps(run_id, /*in_order=*/false);
}

Result<std::vector<StepRecord>> SqliteStore::load_steps(const std::string& run_id) {
  auto steps = read_steps(run_id, /*in_order=*/true);
  if (!steps || steps->empty()) return steps;
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < steps->size(); ++i) by_id.emplace((*steps)[i].id, i);
  std::vector<std::vector<AttemptRecord>> earlier(steps->size());
  auto s = rows(
      "SELECT step_id, number, started_at, finished_at, exit_code, signal, reason, output_bytes "
      "FROM attempts WHERE run_id=? ORDER BY step_id, number",
      "cannot read attempts",
      [&](sqlite3_stmt* st) {
        AttemptRecord a;
        read_all(st, a.step_id, a.number, a.started_at, a.finished_at, a.exit_code, a.signal, a.reason,
                 a.output_bytes);
        if (auto it = by_id.find(a.step_id); it != by_id.end()) earlier[it->second].push_back(std::move(a));
      },
      run_id);
  if (!s.ok()) return s.error();
  for (size_t i = 0; i < steps->size(); ++i) {
    if (earlier[i].empty()) continue;
    auto& list = (*steps)[i].attempt_list;
    list.insert(list.begin(), std::make_move_iterator(earlier[i].begin()), std::make_move_iterator(earlier[i].end()));
  }
  s = rows(
      "SELECT step_id, number, tail FROM attempt_tails WHERE run_id=?", "cannot read attempts",
      [&](sqlite3_stmt* st) {
        auto it = by_id.find(col_text(st, 0));
        if (it == by_id.end()) return;
        int number = sqlite3_column_int(st, 1);
        for (auto& a : (*steps)[it->second].attempt_list)
          if (a.number == number) a.output_tail = col_blob(st, 2);
      },
      run_id);
  if (!s.ok()) return s.error();
  return steps;
}

}  // namespace hearth::engine
