// The journal of granted-command calls: one row per call, written before the
// program starts and completed when it ends, so that after a crash a call
// with a start and no end is known, and reported, as "outcome unknown".
#include <sqlite3.h>

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
  read_all(st, c.step_id, c.attempt, c.sequence, c.command, c.argv, c.cwd, c.started_at, c.allowed, c.rule,
           c.finished_at, c.outcome, c.exit_code, c.output_bytes, c.output_sha256, BlobOut{c.output_tail});
  return c;
}

}  // namespace

Status SqliteStore::insert_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& call) {
  return stage([this, run_id, step_id, attempt, c = call, argv = to_db_json(nlohmann::json(call.argv))] {
    return write(
        "INSERT INTO command_calls (run_id, step_id, attempt, sequence, command, argv, cwd, started_at, allowed, rule, "
        "finished_at, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        "cannot record the command call", run_id, step_id, attempt, c.sequence, c.command, argv, c.cwd, c.started_at,
        c.allowed ? 1 : 0, c.rule, c.finished_at, c.outcome);
  });
}

Status SqliteStore::finish_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& call) {
  return stage([this, run_id, step_id, attempt, c = call] {
    return write(
        "UPDATE command_calls SET finished_at=?, outcome=?, exit_code=?, output_bytes=?, output_sha256=?, "
        "output_tail=? WHERE run_id=? AND step_id=? AND attempt=? AND sequence=?",
        "cannot record the end of the command call", c.finished_at, c.outcome,
        c.exit_code ? std::optional<int64_t>(*c.exit_code) : std::nullopt, c.output_bytes, c.output_sha256,
        Blob{c.output_tail}, run_id, step_id, attempt, c.sequence);
  });
}

Result<std::vector<CallRecord>> SqliteStore::settle_unfinished_calls(const std::string& run_id,
                                                                     const std::string& step_id, int attempt,
                                                                     int64_t now) {
  std::vector<CallRecord> out;
  auto s = rows("SELECT " HEARTH_CALL_COLUMNS
                " FROM command_calls WHERE run_id=? AND step_id=? AND attempt=? AND outcome='running' "
                "ORDER BY sequence",
                "cannot read the command journal", [&](sqlite3_stmt* st) { out.push_back(read_call(st)); }, run_id,
                step_id, attempt);
  if (!s.ok()) return s.error();
  for (auto& c : out) {
    c.outcome = "unknown";
    c.finished_at = now;
    if (auto f = finish_call(run_id, step_id, attempt, c); !f.ok()) return f.error();
  }
  return out;
}

Result<std::vector<CallRecord>> SqliteStore::load_calls(const std::string& run_id) {
  std::vector<CallRecord> out;
  auto s = rows("SELECT " HEARTH_CALL_COLUMNS
                " FROM command_calls WHERE run_id=? ORDER BY started_at, step_id, attempt, sequence",
                "cannot read the command journal", [&](sqlite3_stmt* st) { out.push_back(read_call(st)); }, run_id);
  if (!s.ok()) return s.error();
  return out;
}

}  // namespace hearth::engine
