// Checkpoints of skill and prompt steps, so a resumed run continues from
// the last completed turn: per attempt, one row with the state as the agent
// harness last handed it over (twice per turn) minus its messages, and one
// row per message in agent_messages. A checkpoint writes only the messages
// the previous one did not have (the conversation only grows).
#include <sqlite3.h>

#include "engine/checkpoint_rows.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

Status SqliteStore::save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                              const nlohmann::json& state) {
  return append_checkpoint(run_id, step_id, attempt, turns, checkpoint_rows::header_of(state),
                           checkpoint_rows::messages_of(state), 0);
}

Status SqliteStore::append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                const nlohmann::json& header, const nlohmann::json& messages, size_t first) {
  return stage([this, run_id, step_id, attempt, turns, header, messages, first] {
    return append_checkpoint_now(run_id, step_id, attempt, turns, header, messages, first);
  });
}

Status SqliteStore::append_checkpoint_now(const std::string& run_id, const std::string& step_id, int attempt,
                                          int turns, const nlohmann::json& header, const nlohmann::json& messages,
                                          size_t first) {
  if (auto s = failure(); !s.ok()) return s;
  size_t count = first + messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (auto s = write("INSERT OR REPLACE INTO agent_messages (run_id, step_id, attempt, seq, message) "
                       "VALUES (?,?,?,?,?)",
                       "cannot save the agent's checkpoint", run_id, step_id, attempt,
                       static_cast<int64_t>(first + i), to_db_json(messages[i]));
        !s.ok())
      return s;
  }
  // Rows past the end belong to an earlier conversation of this attempt number.
  if (auto s = write("DELETE FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=? AND seq>=?",
                     "cannot save the agent's checkpoint", run_id, step_id, attempt, static_cast<int64_t>(count));
      !s.ok())
    return s;
  return write(
      "INSERT INTO agent_checkpoints (run_id, step_id, attempt, turns, state, saved_at) VALUES (?,?,?,?,?,?) "
      "ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET turns=excluded.turns, state=excluded.state, "
      "saved_at=excluded.saved_at",
      "cannot save the agent's checkpoint", run_id, step_id, attempt, turns,
      to_db_json(checkpoint_rows::row_of(header, count)), now_ms());
}

Result<size_t> SqliteStore::checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt) {
  size_t stored = 0;
  auto s = rows("SELECT COALESCE(MAX(seq) + 1, 0) FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=?",
                "cannot read the agent's checkpoint",
                [&](sqlite3_stmt* st) { stored = static_cast<size_t>(sqlite3_column_int64(st, 0)); }, run_id, step_id,
                attempt);
  if (!s.ok()) return s.error();
  return stored;
}

// The state as the harness handed it over: the row's fields and its messages.
Result<nlohmann::json> SqliteStore::assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                                  nlohmann::json row) {
  checkpoint_rows::Assembler state(step_id, attempt, std::move(row));
  if (!state.broken().empty()) return Error{state.broken()};
  auto s = rows(
      "SELECT seq, message FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=? AND seq<? ORDER BY seq",
      "cannot read the agent's checkpoint",
      [&](sqlite3_stmt* st) { state.add(sqlite3_column_int64(st, 0), col_text(st, 1)); }, run_id, step_id, attempt,
      state.count());
  if (!s.ok()) return s.error();
  return state.finish();
}

Result<std::optional<nlohmann::json>> SqliteStore::load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                             int attempt) {
  std::optional<nlohmann::json> row;
  auto s = rows("SELECT state FROM agent_checkpoints WHERE run_id=? AND step_id=? AND attempt=?",
                "cannot read the agent's checkpoint", [&](sqlite3_stmt* st) { row = col_json(st, 0); }, run_id,
                step_id, attempt);
  if (!s.ok()) return s.error();
  if (!row) return std::optional<nlohmann::json>();
  auto state = assemble_checkpoint(run_id, step_id, attempt, std::move(*row));
  if (!state) return state.error();
  return std::optional<nlohmann::json>(std::move(*state));
}

Result<std::vector<Store::Checkpoint>> SqliteStore::load_checkpoints(const std::string& run_id) {
  std::vector<Checkpoint> out;
  auto s = rows(
      "SELECT c.step_id, c.attempt, c.turns, c.saved_at, c.state FROM agent_checkpoints c "
      "LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_id = c.step_id WHERE c.run_id=? "
      "ORDER BY s.position, c.attempt",
      "cannot read the agent checkpoints",
      [&](sqlite3_stmt* st) {
        Checkpoint& c = out.emplace_back();
        read_all(st, c.step_id, c.attempt, c.turns, c.saved_at, c.state);
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
