#include "engine/checkout_records.h"

#include "engine/store_tables.h"

namespace hearth::engine {

namespace {

// Version 1 of the table.
Status create_table(StoreTables& t) {
  return t.execute("CREATE TABLE run_checkouts (run_id TEXT PRIMARY KEY, commit_id TEXT NOT NULL)", {},
                   "cannot create the table of checked-out commits");
}

constexpr StoreTables::Migration kMigrations[] = {create_table};

}  // namespace

Status prepare_checkout_records(Store& store) { return store.tables().migrate("run_checkouts", kMigrations); }

Result<std::optional<std::string>> recorded_checkout(Store& store, const std::string& run_id) {
  auto rows = store.tables().query("SELECT commit_id FROM run_checkouts WHERE run_id=?1", {run_id},
                                   "cannot read the run's checked-out commit");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows->front().take_text(0));
}

Status record_checkout(Store& store, const std::string& run_id, const std::string& commit) {
  return store.tables().execute(
      "INSERT INTO run_checkouts (run_id, commit_id) VALUES (?1, ?2) ON CONFLICT (run_id) DO NOTHING",
      {run_id, commit}, "cannot record the run's checked-out commit");
}

}  // namespace hearth::engine
