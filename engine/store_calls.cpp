// The journal of granted-command calls: one row per call, written before the
// program starts and completed when it ends, so that after a crash a call
// with a start and no end is known, and reported, as "outcome unknown".
#include <sqlite3.h>

#include "engine/store.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

namespace {

// Statements are cached by the address of their text: literals only.
#define HEARTH_CALL_COLUMNS                                                                                      \
  "step_id, attempt, sequence, command, argv, cwd, started_at, allowed, rule, finished_at, outcome, exit_code, " \
  "output_bytes, output_sha256, output_tail"

CallRecord read_call(sqlite3_stmt* st) {
  CallRecord c;
  c.step_id = col_text(st, 0);
  c.attempt = sqlite3_column_int(st, 1);
  c.sequence = sqlite3_column_int64(st, 2);
  c.command = col_text(st, 3);
  auto argv = col_json(st, 4);
  if (argv.is_array())
    for (auto& a : argv)
      if (a.is_string()) c.argv.push_back(a.get<std::string>());
  c.cwd = col_text(st, 5);
  c.started_at = sqlite3_column_int64(st, 6);
  c.allowed = sqlite3_column_int(st, 7) != 0;
  c.rule = col_text(st, 8);
  c.finished_at = col_opt(st, 9);
  c.outcome = col_text(st, 10);
  if (auto code = col_opt(st, 11)) c.exit_code = static_cast<int>(*code);
  c.output_bytes = sqlite3_column_int64(st, 12);
  c.output_sha256 = col_text(st, 13);
  c.output_tail = col_blob(st, 14);
  return c;
}

}  // namespace

Status Store::insert_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) {
  return write(
      "INSERT INTO command_calls (run_id, step_id, attempt, sequence, command, argv, cwd, started_at, allowed, rule, "
      "finished_at, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
      "cannot record the command call", run_id, step_id, attempt, c.sequence, c.command,
      to_db_json(nlohmann::json(c.argv)), c.cwd, c.started_at, c.allowed ? 1 : 0, c.rule, c.finished_at, c.outcome);
}

Status Store::finish_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) {
  return write(
      "UPDATE command_calls SET finished_at=?, outcome=?, exit_code=?, output_bytes=?, output_sha256=?, output_tail=? "
      "WHERE run_id=? AND step_id=? AND attempt=? AND sequence=?",
      "cannot record the end of the command call", c.finished_at, c.outcome,
      c.exit_code ? std::optional<int64_t>(*c.exit_code) : std::nullopt, c.output_bytes, c.output_sha256,
      Blob{c.output_tail}, run_id, step_id, attempt, c.sequence);
}

Result<std::vector<CallRecord>> Store::settle_unfinished_calls(const std::string& run_id, const std::string& step_id,
                                                               int attempt, int64_t now) {
  std::vector<CallRecord> out;
  {
    sqlite3_stmt* st = prepare("SELECT " HEARTH_CALL_COLUMNS
                               " FROM command_calls WHERE run_id=? AND step_id=? AND attempt=? AND outcome='running' "
                               "ORDER BY sequence");
    if (!st) return Error{sticky_.message()};
    Reset reset{st};
    bind_text(st, 1, run_id);
    bind_text(st, 2, step_id);
    sqlite3_bind_int(st, 3, attempt);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read_call(st));
    if (rc != SQLITE_DONE) return Error{fail("cannot read the command journal").message()};
  }
  for (auto& c : out) {
    c.outcome = "unknown";
    c.finished_at = now;
    if (auto s = finish_call(run_id, step_id, attempt, c); !s.ok()) return Error{s.message()};
  }
  return out;
}

Result<std::vector<CallRecord>> Store::load_calls(const std::string& run_id) {
  sqlite3_stmt* st =
      prepare("SELECT " HEARTH_CALL_COLUMNS " FROM command_calls WHERE run_id=? ORDER BY started_at, step_id, attempt, sequence");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  std::vector<CallRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read_call(st));
  if (rc != SQLITE_DONE) return Error{fail("cannot read the command journal").message()};
  return out;
}

}  // namespace hearth::engine
