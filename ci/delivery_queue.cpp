// The delivery queue's tables and statements, in the dialect of the run
// store (SQLite or PostgreSQL), through the store's StoreTables.
#include "ci/delivery_queue.h"

#include <nlohmann/json.hpp>

#include "engine/store_tables.h"

namespace hearth::ci {

// The statements whose spelling differs by dialect; the rest are the same
// text on both (parameters ?N, which a PostgreSQL store spells $N).
struct DeliveryQueue::Dialect {
  const char* claim;
  const char* leftovers;
  const char* set_state;
  const char* clear_starts;
  const char* add;
};

namespace {

using engine::SqlRow;
using engine::StoreTables;

// The queue's table, one statement per dialect: the same columns, integers
// bigint on PostgreSQL, where `arrival` keeps the insertion order SQLite's
// rowid gives.
const char* const kCreateSqlite = R"sql(
CREATE TABLE deliveries (
  id             TEXT PRIMARY KEY,
  event          TEXT NOT NULL,
  action         TEXT NOT NULL DEFAULT '',
  payload        TEXT NOT NULL DEFAULT '',
  digest         TEXT NOT NULL,
  received_at    INTEGER NOT NULL,
  state          TEXT NOT NULL,
  run_ids        TEXT NOT NULL DEFAULT '[]',
  workflows      TEXT NOT NULL DEFAULT '[]',
  error          TEXT NOT NULL DEFAULT '',
  unended_starts INTEGER NOT NULL DEFAULT 0
))sql";
const char* const kCreatePostgres = R"sql(
CREATE TABLE deliveries (
  id             TEXT PRIMARY KEY,
  event          TEXT NOT NULL,
  action         TEXT NOT NULL DEFAULT '',
  payload        TEXT NOT NULL DEFAULT '',
  digest         TEXT NOT NULL,
  received_at    BIGINT NOT NULL,
  state          TEXT NOT NULL,
  run_ids        TEXT NOT NULL DEFAULT '[]',
  workflows      TEXT NOT NULL DEFAULT '[]',
  error          TEXT NOT NULL DEFAULT '',
  unended_starts BIGINT NOT NULL DEFAULT 0,
  arrival        BIGINT GENERATED ALWAYS AS IDENTITY
))sql";

// The table, made by `create_table`, and its indexes.
Status create_queue(StoreTables& t, const char* create_table) {
  if (auto s = t.execute(create_table, {}, "cannot create the delivery queue"); !s.ok()) return s;
  if (auto s = t.execute("CREATE INDEX deliveries_by_state ON deliveries(state, received_at)", {},
                         "cannot create the delivery queue");
      !s.ok())
    return s;
  return t.execute("CREATE INDEX deliveries_by_digest ON deliveries(digest)", {}, "cannot create the delivery queue");
}

// Version 1 of the queue's own schema. Until the queue kept a schema of its
// own, the engine's migrations made this table (engine schema 3, and 7 for
// the crash counter): a database written then already has it, rows and all,
// and is adopted as it is, the counter added where it is missing.
Status create_or_adopt(StoreTables& t) {
  auto columns = t.query("SELECT name FROM pragma_table_info('deliveries')", {}, "cannot read the deliveries table");
  if (!columns) return columns.status();
  if (columns->empty()) return create_queue(t, kCreateSqlite);
  for (const auto& c : *columns)
    if (c.text(0) == "unended_starts") return {};
  return t.execute("ALTER TABLE deliveries ADD COLUMN unended_starts INTEGER NOT NULL DEFAULT 0", {},
                   "cannot add the crash counter to the delivery queue");
}

// Version 2 on SQLite: the same columns as PostgreSQL's version 2, so that
// both stores' queues are at one version and `hearth store migrate` copies
// between them. One server owns a SQLite queue: nothing claims by them here.
Status add_owner(StoreTables& t) {
  if (auto s = t.execute("ALTER TABLE deliveries ADD COLUMN owner TEXT NOT NULL DEFAULT ''", {},
                         "cannot add the worker's claim to the delivery queue");
      !s.ok())
    return s;
  return t.execute("ALTER TABLE deliveries ADD COLUMN heartbeat INTEGER NOT NULL DEFAULT 0", {},
                   "cannot add the worker's claim to the delivery queue");
}

constexpr StoreTables::Migration kMigrations[] = {create_or_adopt, add_owner};

// Version 1 on PostgreSQL: no older table to adopt.
Status create_pg(StoreTables& t) { return create_queue(t, kCreatePostgres); }

// Version 2 on PostgreSQL: the worker processing a delivery (its instance
// id, lease.h) and when it last said so, by the database's clock.
Status add_owner_pg(StoreTables& t) {
  return t.execute(
      "ALTER TABLE deliveries ADD COLUMN owner TEXT NOT NULL DEFAULT '', ADD COLUMN heartbeat BIGINT NOT NULL DEFAULT 0",
      {}, "cannot add the worker's claim to the delivery queue");
}

constexpr StoreTables::Migration kPgMigrations[] = {create_pg, add_owner_pg};


std::string string_array(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> strings_of(const std::string& text) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

// The columns every read names, in this order; a payload, when read, after them.
#define HEARTH_DELIVERY_COLUMNS \
  "id, event, action, digest, received_at, state, run_ids, workflows, error, unended_starts"

#define HEARTH_ADD_DELIVERY                                                                               \
  "INSERT INTO deliveries (id, event, action, payload, digest, received_at, state, run_ids, workflows, error) " \
  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"

constexpr DeliveryQueue::Dialect kSqlite{
    "UPDATE deliveries SET unended_starts = unended_starts + 1 WHERE id=?1 RETURNING payload",
    "SELECT " HEARTH_DELIVERY_COLUMNS " FROM deliveries WHERE state NOT IN ('done', 'failed') ORDER BY received_at, rowid",
    "UPDATE deliveries SET state=?1, error=?2, "
    "unended_starts = CASE WHEN ?1 IN ('done', 'failed') THEN 0 ELSE unended_starts END WHERE id=?3",
    "UPDATE deliveries SET unended_starts = 0 WHERE id=?1",
    HEARTH_ADD_DELIVERY};
// A delivery another worker's transaction holds is skipped, not waited for.
// Ending a delivery, or stopping cleanly, gives up the worker's claim: a
// delivery stopped cleanly is free for any worker at once.
constexpr DeliveryQueue::Dialect kPostgres{
    "UPDATE deliveries SET unended_starts = unended_starts + 1 "
    "WHERE id = (SELECT id FROM deliveries WHERE id=?1 FOR UPDATE SKIP LOCKED) RETURNING payload",
    "SELECT " HEARTH_DELIVERY_COLUMNS
    " FROM deliveries WHERE state NOT IN ('done', 'failed') ORDER BY received_at, arrival",
    "UPDATE deliveries SET state=?1, error=?2, "
    "unended_starts = CASE WHEN ?1 IN ('done', 'failed') THEN 0 ELSE unended_starts END, "
    "owner = CASE WHEN ?1 IN ('done', 'failed') THEN '' ELSE owner END WHERE id=?3",
    "UPDATE deliveries SET unended_starts = 0, owner = '' WHERE id=?1",
    // Another acceptor may have stored the same delivery id a moment ago
    // (a redelivery that reached two servers): it is stored once.
    HEARTH_ADD_DELIVERY " ON CONFLICT (id) DO NOTHING"};

// The database's time in ms since the epoch.
#define HEARTH_DB_NOW_MS "(EXTRACT(EPOCH FROM now()) * 1000)::bigint"

// The oldest delivery no live worker processes: unclaimed, or its worker's
// heartbeat stale, and none of its runs under a live lease (a run is taken
// over only once its engine is gone). Claimed in the same statement; a row
// another worker is claiming is skipped (SKIP LOCKED), and one it has just
// claimed is tested again as it left it. Repeating the statement (after a
// lost connection) may have claimed one more: the claimer re-reads what it
// owns (owned_by).
const char* const kClaimNextPg =
    "UPDATE deliveries SET owner=?1, heartbeat=" HEARTH_DB_NOW_MS ", unended_starts = unended_starts + 1 "
    "WHERE id = (SELECT d.id FROM deliveries d WHERE d.state IN ('accepted', 'started') "
    "AND (d.owner = '' OR d.heartbeat < " HEARTH_DB_NOW_MS " - ?2) "
    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id IN (SELECT jsonb_array_elements_text(d.run_ids::jsonb)) "
    "AND r.status = 'running' AND r.lease_owner <> '' AND r.lease_heartbeat >= " HEARTH_DB_NOW_MS " - ?2) "
    "ORDER BY d.received_at, d.arrival LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING " HEARTH_DELIVERY_COLUMNS ", payload";

DeliveryRecord delivery_of(SqlRow& row) {
  DeliveryRecord d{row.take_text(0), row.take_text(1), row.take_text(2), row.take_text(10), row.take_text(3),
                   row.integer(4),   row.take_text(5), {},               {},                row.take_text(8),
                   static_cast<int>(row.integer(9))};
  d.run_ids = strings_of(row.text(6));
  d.workflows = strings_of(row.text(7));
  return d;
}

}  // namespace

Result<std::unique_ptr<DeliveryQueue>> DeliveryQueue::open(engine::Store& store) {
  StoreTables& t = store.tables();
  bool postgres = t.dialect() == "postgres";
  if (!postgres && t.dialect() != "sqlite")
    return Error{"the delivery queue has no tables for a " + std::string(t.dialect()) + " store"};
  auto migrated = postgres ? t.migrate("deliveries", kPgMigrations) : t.migrate("deliveries", kMigrations);
  if (!migrated.ok()) return migrated.error();
  return std::unique_ptr<DeliveryQueue>(new DeliveryQueue(store, postgres ? kPostgres : kSqlite));
}

DeliveryQueue::~DeliveryQueue() { store_.forget(this); }

Result<DeliveryQueue::Known> DeliveryQueue::look_up_now(const std::string& id, const std::string& digest) {
  auto rows = tables_.query("SELECT " HEARTH_DELIVERY_COLUMNS " FROM deliveries WHERE id=?1", {id},
                            "cannot read deliveries");
  if (!rows) return rows.error();
  if (!rows->empty()) return Known{delivery_of(rows->front()), std::nullopt};
  rows = tables_.query("SELECT id FROM deliveries WHERE digest=?1 LIMIT 1", {digest}, "cannot read deliveries");
  if (!rows) return rows.error();
  if (rows->empty()) return Known{};
  return Known{std::nullopt, rows->front().take_text(0)};
}

void DeliveryQueue::look_up(const std::string& id, const std::string& digest,
                            std::function<void(Result<Known>)> done) {
  done(look_up_now(id, digest));
}

Status DeliveryQueue::begin() { return store_.begin(); }
void DeliveryQueue::rollback() { store_.rollback(); }

Status DeliveryQueue::add(const DeliveryRecord& d) {
  return tables_.execute(
      sql_.add,
      {d.id, d.event, d.action, d.payload, d.digest, d.received_at, d.state, string_array(d.run_ids),
       string_array(d.workflows), d.error},
      "cannot record the delivery");
}

Status DeliveryQueue::set_state(const std::string& id, const std::string& state, const std::string& error) {
  return tables_.execute(sql_.set_state, {state, error, id}, "cannot update the delivery");
}

Status DeliveryQueue::clear_starts(const std::string& id) {
  return tables_.execute(sql_.clear_starts, {id}, "cannot update the delivery");
}

void DeliveryQueue::commit(std::function<void(const Status&)> done) {
  if (auto s = store_.commit(); !s.ok()) return done(s);
  store_.when_durable(this, std::move(done));
}

Result<std::optional<std::string>> DeliveryQueue::claim_now(const std::string& id) {
  auto rows = tables_.query(sql_.claim, {id}, "cannot count the start of the delivery");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows->front().take_text(0));
}

void DeliveryQueue::claim(const std::string& id, std::function<void(Result<std::optional<std::string>>)> done) {
  done(claim_now(id));
}

Result<DeliveryQueue::Leftovers> DeliveryQueue::leftovers() {
  auto rows = tables_.query(sql_.leftovers, {}, "cannot list deliveries");
  if (!rows) return rows.error();
  Leftovers out;
  for (auto& row : *rows) {
    DeliveryRecord d = delivery_of(row);
    if (d.run_ids.empty()) {
      out.close.push_back(std::move(d));
    } else if (d.unended_starts >= kMaxUnendedStarts) {
      std::string why = "hearth serve ended " + std::to_string(d.unended_starts) +
                        " times (crashed or was killed) while processing this delivery; it is not started again "
                        "(hearth resume <run> continues its runs once the cause is found)";
      out.quarantine.push_back({std::move(d), std::move(why)});
    } else {
      out.resume.push_back(std::move(d));
    }
  }
  return out;
}

Result<std::optional<DeliveryRecord>> DeliveryQueue::find(const std::string& id) {
  auto rows = tables_.query("SELECT " HEARTH_DELIVERY_COLUMNS ", payload FROM deliveries WHERE id=?1", {id},
                            "cannot read deliveries");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<DeliveryRecord>();
  return std::optional<DeliveryRecord>(delivery_of(rows->front()));
}

}  // namespace hearth::ci

namespace hearth::ci {

Result<std::optional<DeliveryRecord>> DeliveryQueue::claim_next(const std::string& owner, int64_t stale_ms) {
  if (!store_.shared()) return Error{"claim_next: the delivery queue is not on a shared store (a bug)"};
  auto rows = tables_.query(kClaimNextPg, {owner, stale_ms}, "cannot claim a delivery");
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<DeliveryRecord>();
  return std::optional<DeliveryRecord>(delivery_of(rows->front()));
}

Result<std::vector<DeliveryRecord>> DeliveryQueue::owned_by(const std::string& owner) {
  auto rows = tables_.query("SELECT " HEARTH_DELIVERY_COLUMNS
                            ", payload FROM deliveries WHERE owner=?1 AND state IN ('accepted', 'started') "
                            "ORDER BY received_at, arrival",
                            {owner}, "cannot read deliveries");
  if (!rows) return rows.error();
  std::vector<DeliveryRecord> out;
  for (auto& row : *rows) out.push_back(delivery_of(row));
  return out;
}

Result<std::vector<std::string>> DeliveryQueue::renew(const std::string& owner) {
  auto rows = tables_.query("UPDATE deliveries SET heartbeat=" HEARTH_DB_NOW_MS
                            " WHERE owner=?1 AND state IN ('accepted', 'started') RETURNING id",
                            {owner}, "cannot renew the claim on deliveries");
  if (!rows) return rows.error();
  std::vector<std::string> out;
  for (auto& row : *rows) out.push_back(row.take_text(0));
  return out;
}

}  // namespace hearth::ci
