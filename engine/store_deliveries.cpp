// The webhook queue of `hearth serve` in the run store: one row per
// delivery, written in the same transactions as everything else.
#include <sqlite3.h>

#include "engine/store.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

namespace {

nlohmann::json string_array(const std::vector<std::string>& v) {
  auto a = nlohmann::json::array();
  for (auto& s : v) a.push_back(s);
  return a;
}

std::vector<std::string> col_strings(sqlite3_stmt* st, int i) {
  std::vector<std::string> out;
  auto j = col_json(st, i);
  if (!j.is_array()) return out;
  for (auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

const char* kDeliveryColumns = "id, event, action, digest, received_at, state, run_ids, workflows, error, unended_starts";

DeliveryRecord read_delivery(sqlite3_stmt* st) {
  DeliveryRecord d;
  d.id = col_text(st, 0);
  d.event = col_text(st, 1);
  d.action = col_text(st, 2);
  d.digest = col_text(st, 3);
  d.received_at = sqlite3_column_int64(st, 4);
  d.state = col_text(st, 5);
  d.run_ids = col_strings(st, 6);
  d.workflows = col_strings(st, 7);
  d.error = col_text(st, 8);
  d.unended_starts = sqlite3_column_int(st, 9);
  return d;
}

}  // namespace

Status Store::insert_delivery(const DeliveryRecord& d) {
  return write(
      "INSERT INTO deliveries (id, event, action, payload, digest, received_at, state, run_ids, workflows, error) "
      "VALUES (?,?,?,?,?,?,?,?,?,?)",
      "cannot record the delivery", d.id, d.event, d.action, d.payload, d.digest, d.received_at, d.state,
      to_db_json(string_array(d.run_ids)), to_db_json(string_array(d.workflows)), d.error);
}

Status Store::update_delivery(const std::string& id, const std::string& state, const std::string& error) {
  return write(
      "UPDATE deliveries SET state=?, error=?, "
      "unended_starts = CASE WHEN ?1 IN ('done', 'failed') THEN 0 ELSE unended_starts END WHERE id=?",
      "cannot update the delivery", state, error, id);
}

Status Store::count_delivery_start(const std::string& id) {
  return write("UPDATE deliveries SET unended_starts = unended_starts + 1 WHERE id=?",
               "cannot count the start of the delivery", id);
}

Status Store::clear_delivery_starts(const std::string& id) {
  return write("UPDATE deliveries SET unended_starts = 0 WHERE id=?", "cannot update the delivery", id);
}

Result<std::optional<DeliveryRecord>> Store::find_delivery(const std::string& id) {
  static const std::string sql = std::string("SELECT ") + kDeliveryColumns + ", payload FROM deliveries WHERE id=?";
  sqlite3_stmt* st = prepare(sql.c_str());
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return std::optional<DeliveryRecord>();
  if (rc != SQLITE_ROW) return Error{fail("cannot read deliveries").message()};
  DeliveryRecord d = read_delivery(st);
  d.payload = col_text(st, 10);
  return std::optional<DeliveryRecord>(std::move(d));
}

Result<std::optional<std::string>> Store::delivery_with_digest(const std::string& digest) {
  sqlite3_stmt* st = prepare("SELECT id FROM deliveries WHERE digest=? LIMIT 1");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, digest);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return Error{fail("cannot read deliveries").message()};
  return std::optional<std::string>(col_text(st, 0));
}

Result<std::vector<DeliveryRecord>> Store::unfinished_deliveries() {
  static const std::string sql = std::string("SELECT ") + kDeliveryColumns +
                                 " FROM deliveries WHERE state NOT IN ('done', 'failed') ORDER BY received_at, rowid";
  sqlite3_stmt* st = prepare(sql.c_str());
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  std::vector<DeliveryRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read_delivery(st));
  if (rc != SQLITE_DONE) return Error{fail("cannot list deliveries").message()};
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> Store::delivery_counts() {
  sqlite3_stmt* st = prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  std::vector<std::pair<std::string, int64_t>> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.emplace_back(col_text(st, 0), sqlite3_column_int64(st, 1));
  if (rc != SQLITE_DONE) return Error{fail("cannot count deliveries").message()};
  return out;
}

}  // namespace hearth::engine
