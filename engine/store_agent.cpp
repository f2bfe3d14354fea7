// Checkpoints of skill and prompt steps: one row per attempt holding the
// conversation as the agent harness last handed it over (twice per turn),
// so a resumed run continues from the last completed turn.
#include <sqlite3.h>

#include "engine/store.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

Status Store::save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                              const nlohmann::json& state) {
  HEARTH_WRITE(
      "INSERT INTO agent_checkpoints (run_id, step_id, attempt, turns, state, saved_at) VALUES (?,?,?,?,?,?) "
      "ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET turns=excluded.turns, state=excluded.state, "
      "saved_at=excluded.saved_at",
      "cannot save the agent's checkpoint", {
        bind_text(st, 1, run_id);
        bind_text(st, 2, step_id);
        sqlite3_bind_int(st, 3, attempt);
        sqlite3_bind_int(st, 4, turns);
        bind_text(st, 5, to_db_json(state));
        sqlite3_bind_int64(st, 6, now_ms());
      });
}

Result<std::optional<nlohmann::json>> Store::load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                             int attempt) {
  sqlite3_stmt* st = prepare("SELECT state FROM agent_checkpoints WHERE run_id=? AND step_id=? AND attempt=?");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  bind_text(st, 2, step_id);
  sqlite3_bind_int(st, 3, attempt);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return std::optional<nlohmann::json>();
  if (rc != SQLITE_ROW) return Error{fail("cannot read the agent's checkpoint").message()};
  auto state = col_json(st, 0);
  if (state.is_discarded()) return Error{"the checkpoint of step '" + step_id + "' attempt " + std::to_string(attempt) + " is not valid JSON"};
  return std::optional<nlohmann::json>(std::move(state));
}

Result<std::vector<Store::Checkpoint>> Store::load_checkpoints(const std::string& run_id) {
  sqlite3_stmt* st = prepare(
      "SELECT c.step_id, c.attempt, c.turns, c.saved_at, c.state FROM agent_checkpoints c "
      "LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_id = c.step_id WHERE c.run_id=? "
      "ORDER BY s.position, c.attempt");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  std::vector<Checkpoint> out;
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
  return out;
}

}  // namespace hearth::engine
