// The PostgreSQL store's leases (lease.h): written and tested by the
// database, with its clock, in one conditional statement each, so that the
// engines sharing it never disagree on whose a run is because their clocks
// do, and two of them never both take a run over.
#include "engine/lease.h"
#include "engine/pg_sql.h"

namespace hearth::engine {

namespace {
// The database's time in ms since the epoch (its transaction's start).
#define HEARTH_PG_NOW_MS "(EXTRACT(EPOCH FROM now()) * 1000)::bigint"
}  // namespace

// What this engine leases is noted for fencing (pg_store_pipeline.cpp).
Status PgStore::set_lease(const std::string& run_id, const std::string& owner, int64_t) {
  touch(run_id);
  if (owner.empty()) held_.erase(run_id);
  else held_[run_id] = owner;
  return write("UPDATE runs SET lease_owner=$1, lease_heartbeat=CASE WHEN $1='' THEN 0 ELSE " HEARTH_PG_NOW_MS
               " END WHERE id=$2",
               "cannot record the run's lease", owner, run_id);
}

Result<std::string> PgStore::take_lease(const std::string& run_id, const std::string& owner, int64_t,
                                        int64_t stale_ms) {
  const char* what = "cannot take the run's lease";
  bool taken = false;
  // Free, ours, or stale by the database's clock. A row another transaction
  // is taking waits here until it ends, then is tested as it left it.
  auto s = rows("UPDATE runs SET lease_owner=$1, lease_heartbeat=" HEARTH_PG_NOW_MS
                " WHERE id=$2 AND (lease_owner='' OR lease_owner=$1 OR lease_heartbeat < " HEARTH_PG_NOW_MS
                " - $3) RETURNING 1",
                what, [&](const PGresult*, int) { taken = true; }, owner, run_id, stale_ms);
  if (!s.ok()) return s.error();
  if (taken) return held_[run_id] = owner, std::string();
  std::optional<std::pair<std::string, int64_t>> holder;
  int64_t age = 0;
  s = rows("SELECT lease_owner, lease_heartbeat, " HEARTH_PG_NOW_MS " - lease_heartbeat FROM runs WHERE id=$1", what,
           [&](const PGresult* r, int i) {
             holder.emplace(pg::cell(r, i, 0), pg::cell_int(r, i, 1));
             age = pg::cell_int(r, i, 2);
           },
           run_id);
  if (!s.ok()) return s.error();
  if (!holder) return Error{"no run with id '" + run_id + "' in " + shown_ + " (see `hearth runs`)"};
  // A process of this machine that is gone holds it no more, however fresh
  // its heartbeat: taken if it is still that process's lease.
  if (owner_gone(holder->first)) {
    s = rows("UPDATE runs SET lease_owner=$1, lease_heartbeat=" HEARTH_PG_NOW_MS
             " WHERE id=$2 AND lease_owner=$3 AND lease_heartbeat=$4 RETURNING 1",
             what, [&](const PGresult*, int) { taken = true; }, owner, run_id, holder->first, holder->second);
    if (!s.ok()) return s.error();
    if (taken) return held_[run_id] = owner, std::string();
  }
  return holder->first + " (last heartbeat " + std::to_string(age / 1000) + "s ago by the database's clock)";
}

Status PgStore::renew_lease(const std::string& run_id, const std::string& owner, int64_t) {
  bool renewed = false;
  auto s = rows("UPDATE runs SET lease_heartbeat=" HEARTH_PG_NOW_MS " WHERE id=$1 AND lease_owner=$2 RETURNING 1",
                "cannot renew the run's lease", [&](const PGresult*, int) { renewed = true; }, run_id, owner);
  if (!s.ok()) return s;
  if (renewed) return {};
  held_.erase(run_id);
  std::string holder;
  s = rows("SELECT lease_owner FROM runs WHERE id=$1", "cannot renew the run's lease",
           [&](const PGresult* r, int i) { holder = pg::cell(r, i, 0); }, run_id);
  if (!s.ok()) return s;
  return Error{"run " + run_id + " was taken over by " + (holder.empty() ? std::string("nobody (released)") : holder) +
               ": this engine's lease expired (no heartbeat for the lease timeout); it stops running it"};
}

}  // namespace hearth::engine
