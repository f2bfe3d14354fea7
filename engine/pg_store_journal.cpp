// The PostgreSQL store's command journal and agent checkpoints: the
// statements of store_calls.cpp and store_agent.cpp in PostgreSQL's spelling.
#include <algorithm>

#include "engine/checkpoint_rows.h"
#include "engine/pg_sql.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using pg::Bytes;
using pg::BytesOut;
using pg::read_all;
using sql::to_db_json;

namespace {

#define HEARTH_CALL_COLUMNS                                                                                      \
  "step_id, attempt, sequence, command, argv, cwd, started_at, allowed, rule, finished_at, outcome, exit_code, " \
  "output_bytes, output_sha256, output_tail"

CallRecord read_call(const PGresult* r, int i) {
  CallRecord c;
  read_all(r, i, c.step_id, c.attempt, c.sequence, c.command, c.argv, c.cwd, c.started_at, c.allowed, c.rule,
           c.finished_at, c.outcome, c.exit_code, c.output_bytes, c.output_sha256, BytesOut{c.output_tail});
  return c;
}

}  // namespace

Status PgStore::insert_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) {
  touch(run_id);
  return write(
      "INSERT INTO command_calls (run_id, step_id, attempt, sequence, command, argv, cwd, started_at, allowed, rule, "
      "finished_at, outcome) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
      "cannot record the command call", run_id, step_id, attempt, c.sequence, c.command,
      to_db_json(nlohmann::json(c.argv)), c.cwd, c.started_at, c.allowed, c.rule, c.finished_at, c.outcome);
}

Status PgStore::finish_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) {
  touch(run_id);
  return write(
      "UPDATE command_calls SET finished_at=$1, outcome=$2, exit_code=$3, output_bytes=$4, output_sha256=$5, "
      "output_tail=$6 WHERE run_id=$7 AND step_id=$8 AND attempt=$9 AND sequence=$10",
      "cannot record the end of the command call", c.finished_at, c.outcome,
      c.exit_code ? std::optional<int64_t>(*c.exit_code) : std::nullopt, c.output_bytes, c.output_sha256,
      Bytes{c.output_tail}, run_id, step_id, attempt, c.sequence);
}

// One statement marks them and returns them: nothing can start a call of
// this attempt between the read and the write.
Result<std::vector<CallRecord>> PgStore::settle_unfinished_calls(const std::string& run_id, const std::string& step_id,
                                                                 int attempt, int64_t now) {
  touch(run_id);
  std::vector<CallRecord> out;
  if (!sticky_.ok()) return sticky_.error();
  auto s = rows("UPDATE command_calls SET outcome='unknown', finished_at=$4 "
                "WHERE run_id=$1 AND step_id=$2 AND attempt=$3 AND outcome='running' RETURNING " HEARTH_CALL_COLUMNS,
                "cannot settle the command journal", [&](const PGresult* r, int i) { out.push_back(read_call(r, i)); },
                run_id, step_id, attempt, now);
  if (!s.ok()) return s.error();
  if (!in_transaction_) ++commits_;
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.sequence < b.sequence; });
  return out;
}

Result<std::vector<CallRecord>> PgStore::load_calls(const std::string& run_id) {
  std::vector<CallRecord> out;
  auto s = rows("SELECT " HEARTH_CALL_COLUMNS
                " FROM command_calls WHERE run_id=$1 ORDER BY started_at, step_id, attempt, sequence",
                "cannot read the command journal", [&](const PGresult* r, int i) { out.push_back(read_call(r, i)); },
                run_id);
  if (!s.ok()) return s.error();
  return out;
}

Status PgStore::save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                const nlohmann::json& state) {
  touch(run_id);
  return append_checkpoint(run_id, step_id, attempt, turns, checkpoint_rows::header_of(state),
                           checkpoint_rows::messages_of(state), 0);
}

Status PgStore::append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                  const nlohmann::json& header, const nlohmann::json& messages, size_t first) {
  touch(run_id);
  if (!sticky_.ok()) return sticky_;
  size_t count = first + messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (auto s = write("INSERT INTO agent_messages (run_id, step_id, attempt, seq, message) VALUES ($1,$2,$3,$4,$5) "
                       "ON CONFLICT (run_id, step_id, attempt, seq) DO UPDATE SET message=excluded.message",
                       "cannot save the agent's checkpoint", run_id, step_id, attempt,
                       static_cast<int64_t>(first + i), to_db_json(messages[i]));
        !s.ok())
      return s;
  }
  // Rows past the end belong to an earlier conversation of this attempt number.
  if (auto s = write("DELETE FROM agent_messages WHERE run_id=$1 AND step_id=$2 AND attempt=$3 AND seq>=$4",
                     "cannot save the agent's checkpoint", run_id, step_id, attempt, static_cast<int64_t>(count));
      !s.ok())
    return s;
  return write(
      "INSERT INTO agent_checkpoints (run_id, step_id, attempt, turns, state, saved_at) VALUES ($1,$2,$3,$4,$5,$6) "
      "ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET turns=excluded.turns, state=excluded.state, "
      "saved_at=excluded.saved_at",
      "cannot save the agent's checkpoint", run_id, step_id, attempt, turns,
      to_db_json(checkpoint_rows::row_of(header, count)), now_ms());
}

Result<size_t> PgStore::checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt) {
  size_t stored = 0;
  auto s = rows("SELECT COALESCE(MAX(seq) + 1, 0) FROM agent_messages WHERE run_id=$1 AND step_id=$2 AND attempt=$3",
                "cannot read the agent's checkpoint",
                [&](const PGresult* r, int i) { stored = static_cast<size_t>(pg::cell_int(r, i, 0)); }, run_id,
                step_id, attempt);
  if (!s.ok()) return s.error();
  return stored;
}

Result<nlohmann::json> PgStore::assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                                    nlohmann::json row) {
  checkpoint_rows::Assembler state(step_id, attempt, std::move(row));
  if (!state.broken().empty()) return Error{state.broken()};
  auto s = rows(
      "SELECT seq, message FROM agent_messages WHERE run_id=$1 AND step_id=$2 AND attempt=$3 AND seq<$4 ORDER BY seq",
      "cannot read the agent's checkpoint",
      [&](const PGresult* r, int i) { state.add(pg::cell_int(r, i, 0), pg::cell(r, i, 1)); }, run_id, step_id,
      attempt, state.count());
  if (!s.ok()) return s.error();
  return state.finish();
}

Result<std::optional<nlohmann::json>> PgStore::load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                               int attempt) {
  std::optional<nlohmann::json> row;
  auto s = rows("SELECT state FROM agent_checkpoints WHERE run_id=$1 AND step_id=$2 AND attempt=$3",
                "cannot read the agent's checkpoint",
                [&](const PGresult* r, int i) { read_all(r, i, row.emplace()); }, run_id, step_id, attempt);
  if (!s.ok()) return s.error();
  if (!row) return std::optional<nlohmann::json>();
  auto state = assemble_checkpoint(run_id, step_id, attempt, std::move(*row));
  if (!state) return state.error();
  return std::optional<nlohmann::json>(std::move(*state));
}

Result<std::vector<Store::Checkpoint>> PgStore::load_checkpoints(const std::string& run_id) {
  std::vector<Checkpoint> out;
  auto s = rows(
      "SELECT c.step_id, c.attempt, c.turns, c.saved_at, c.state FROM agent_checkpoints c "
      "LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_id = c.step_id WHERE c.run_id=$1 "
      "ORDER BY s.position, c.attempt",
      "cannot read the agent checkpoints",
      [&](const PGresult* r, int i) {
        Checkpoint& c = out.emplace_back();
        read_all(r, i, c.step_id, c.attempt, c.turns, c.saved_at, c.state);
      },
      run_id);
  if (!s.ok()) return s.error();
  for (auto& c : out) {
    auto state = assemble_checkpoint(run_id, c.step_id, c.attempt, std::move(c.state));
    if (!state) return state.error();
    c.state = std::move(*state);
  }
  return out;
}

}  // namespace hearth::engine
