// Checkpoints of skill and prompt steps, so a resumed run continues from
// the last completed turn: per attempt, one row with the state as the agent
// harness last handed it over (twice per turn) minus its messages, and one
// row per message in agent_messages. A checkpoint writes only the messages
// the previous one did not have (the conversation only grows).
#include <sqlite3.h>

#include "engine/store.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

Status Store::save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                              const nlohmann::json& state) {
  static const nlohmann::json kNone = nlohmann::json::array();
  auto messages = state.find("messages");
  const nlohmann::json& list = messages != state.end() && messages->is_array() ? *messages : kNone;
  nlohmann::json header = nlohmann::json::object();
  for (auto it = state.begin(); it != state.end(); ++it)
    if (it.key() != "messages") header[it.key()] = it.value();
  return append_checkpoint(run_id, step_id, attempt, turns, header, list, 0);
}

Status Store::append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                const nlohmann::json& header, const nlohmann::json& messages, size_t first) {
  if (!sticky_.ok()) return sticky_;
  size_t count = first + messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    sqlite3_stmt* st = prepare(
        "INSERT OR REPLACE INTO agent_messages (run_id, step_id, attempt, seq, message) VALUES (?,?,?,?,?)");
    if (!st) return sticky_;
    Reset reset{st};
    bind_text(st, 1, run_id);
    bind_text(st, 2, step_id);
    sqlite3_bind_int(st, 3, attempt);
    sqlite3_bind_int64(st, 4, static_cast<int64_t>(first + i));
    bind_text(st, 5, to_db_json(messages[i]));
    if (auto s = step_done(st, "cannot save the agent's checkpoint"); !s.ok()) return s;
  }
  {  // Rows past the end belong to an earlier conversation of this attempt number.
    sqlite3_stmt* st = prepare("DELETE FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=? AND seq>=?");
    if (!st) return sticky_;
    Reset reset{st};
    bind_text(st, 1, run_id);
    bind_text(st, 2, step_id);
    sqlite3_bind_int(st, 3, attempt);
    sqlite3_bind_int64(st, 4, static_cast<int64_t>(count));
    if (auto s = step_done(st, "cannot save the agent's checkpoint"); !s.ok()) return s;
  }
  nlohmann::json row = header;
  row.erase("messages_saved");  // the writer's bookkeeping, not the conversation's
  row["messages_count"] = count;
  return write(
      "INSERT INTO agent_checkpoints (run_id, step_id, attempt, turns, state, saved_at) VALUES (?,?,?,?,?,?) "
      "ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET turns=excluded.turns, state=excluded.state, "
      "saved_at=excluded.saved_at",
      "cannot save the agent's checkpoint", run_id, step_id, attempt, turns, to_db_json(row), now_ms());
}

Result<size_t> Store::checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt) {
  sqlite3_stmt* st = prepare(
      "SELECT COALESCE(MAX(seq) + 1, 0) FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=?");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  bind_text(st, 2, step_id);
  sqlite3_bind_int(st, 3, attempt);
  if (sqlite3_step(st) != SQLITE_ROW) return Error{fail("cannot read the agent's checkpoint").message()};
  return static_cast<size_t>(sqlite3_column_int64(st, 0));
}

// The state as the harness handed it over: the row's fields and its messages.
Result<nlohmann::json> Store::assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                                  nlohmann::json row) {
  std::string where = "the checkpoint of step '" + step_id + "' attempt " + std::to_string(attempt);
  if (!row.is_object()) return Error{where + " is not valid JSON"};
  int64_t count = row.value("messages_count", int64_t{0});
  row.erase("messages_count");
  sqlite3_stmt* st = prepare(
      "SELECT seq, message FROM agent_messages WHERE run_id=? AND step_id=? AND attempt=? AND seq<? ORDER BY seq");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  bind_text(st, 2, step_id);
  sqlite3_bind_int(st, 3, attempt);
  sqlite3_bind_int64(st, 4, count);
  nlohmann::json messages = nlohmann::json::array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_int64(st, 0) != static_cast<int64_t>(messages.size()))
      return Error{where + " misses message " + std::to_string(messages.size())};
    auto m = col_json(st, 1);
    if (m.is_discarded()) return Error{where + ": message " + std::to_string(messages.size()) + " is not valid JSON"};
    messages.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return Error{fail("cannot read the agent's checkpoint").message()};
  if (static_cast<int64_t>(messages.size()) != count)
    return Error{where + " holds " + std::to_string(messages.size()) + " of its " + std::to_string(count) + " messages"};
  row["messages"] = std::move(messages);
  return row;
}

Result<std::optional<nlohmann::json>> Store::load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                             int attempt) {
  nlohmann::json row;
  {
    sqlite3_stmt* st = prepare("SELECT state FROM agent_checkpoints WHERE run_id=? AND step_id=? AND attempt=?");
    if (!st) return Error{sticky_.message()};
    Reset reset{st};
    bind_text(st, 1, run_id);
    bind_text(st, 2, step_id);
    sqlite3_bind_int(st, 3, attempt);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return std::optional<nlohmann::json>();
    if (rc != SQLITE_ROW) return Error{fail("cannot read the agent's checkpoint").message()};
    row = col_json(st, 0);
  }
  auto state = assemble_checkpoint(run_id, step_id, attempt, std::move(row));
  if (!state) return state.error();
  return std::optional<nlohmann::json>(std::move(*state));
}

Result<std::vector<Store::Checkpoint>> Store::load_checkpoints(const std::string& run_id) {
  std::vector<Checkpoint> out;
  {
    sqlite3_stmt* st = prepare(
        "SELECT c.step_id, c.attempt, c.turns, c.saved_at, c.state FROM agent_checkpoints c "
        "LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_id = c.step_id WHERE c.run_id=? "
        "ORDER BY s.position, c.attempt");
    if (!st) return Error{sticky_.message()};
    Reset reset{st};
    bind_text(st, 1, run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      Checkpoint c;
      c.step_id = col_text(st, 0);
      c.attempt = sqlite3_column_int(st, 1);
      c.turns = sqlite3_column_int(st, 2);
      c.saved_at = sqlite3_column_int64(st, 3);
      c.state = col_json(st, 4);
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return Error{fail("cannot read the agent checkpoints").message()};
  }
  for (auto& c : out) {
    auto state = assemble_checkpoint(run_id, c.step_id, c.attempt, std::move(c.state));
    if (!state) return state.error();
    c.state = std::move(*state);
  }
  return out;
}

}  // namespace hearth::engine
