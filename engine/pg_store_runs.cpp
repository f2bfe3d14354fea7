// The PostgreSQL store's runs, steps, attempts and events: the statements
// of store.cpp in PostgreSQL's spelling ($N parameters, bytea).
#include <unordered_map>

#include "engine/pg_sql.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using pg::Bytes;
using pg::BytesOut;
using pg::read_all;
using sql::to_db_json;

// The heartbeat of a leased run is the database's time (pg_store_lease.cpp).
Status PgStore::insert_run(const RunRecord& r) {
  if (!r.lease_owner.empty()) held_[r.id] = r.lease_owner;
  return write(
      "INSERT INTO runs (id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, "
      "created_at, finished_at, error, lease_owner, lease_heartbeat) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,"
      "CASE WHEN $12='' THEN 0 ELSE (EXTRACT(EPOCH FROM now()) * 1000)::bigint END)",
      "cannot record the run", r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text,
      to_db_json(r.payload), r.repo, r.status, r.created_at, r.finished_at, r.error, r.lease_owner);
}

Status PgStore::update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                                const std::string& text) {
  touch(run_id);
  return write("UPDATE runs SET workflow_path=$1, workflow_hash=$2, workflow_text=$3 WHERE id=$4",
               "cannot record the run's workflow", path, hash, text, run_id);
}

Status PgStore::insert_step(const std::string& run_id, const StepRecord& s) {
  touch(run_id);
  return write("INSERT INTO steps (run_id, step_id, position, status) VALUES ($1,$2,$3,$4)", "cannot record a step",
               run_id, s.id, s.position, s.status);
}

Status PgStore::update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                           const std::string& error) {
  touch(run_id);
  return write("UPDATE runs SET status=$1, finished_at=$2, error=$3 WHERE id=$4", "cannot update the run", status,
               finished_at, error, run_id);
}

Status PgStore::update_step(const std::string& run_id, const StepRecord& s) {
  touch(run_id);
  return write(
      "UPDATE steps SET status=$1, attempts=$2, exit_code=$3, started_at=$4, finished_at=$5, outputs=$6, reason=$7, "
      "retry_at=$8, failures=$9, interruptions=$10, result=$11 WHERE run_id=$12 AND step_id=$13",
      "cannot update a step", s.status, s.attempts, s.exit_code, s.started_at, s.finished_at, to_db_json(s.outputs),
      s.reason, s.retry_at, s.failures, s.interruptions,
      s.result.is_null() ? std::nullopt : std::optional<std::string>(to_db_json(s.result)), run_id, s.id);
}

Status PgStore::insert_attempt(const std::string& run_id, const AttemptRecord& a) {
  touch(run_id);
  return write("INSERT INTO attempts (run_id, step_id, number, started_at) VALUES ($1,$2,$3,$4)",
               "cannot record an attempt", run_id, a.step_id, a.number, a.started_at);
}

Status PgStore::finish_attempt(const std::string& run_id, const AttemptRecord& a) {
  touch(run_id);
  return write(
      "UPDATE attempts SET finished_at=$1, exit_code=$2, signal=$3, reason=$4, output_tail=$5, output_bytes=$6 "
      "WHERE run_id=$7 AND step_id=$8 AND number=$9",
      "cannot record an attempt's outcome", a.finished_at, a.exit_code, a.signal, a.reason, Bytes{a.output_tail},
      a.output_bytes, run_id, a.step_id, a.number);
}

Status PgStore::insert_event(const EventRecord& e) {
  touch(e.run_id);
  return write("INSERT INTO events (run_id, seq, at, type, step_id, data) VALUES ($1,$2,$3,$4,$5,$6)",
               "cannot record an event", e.run_id, e.seq, e.at, e.type, e.step_id, to_db_json(e.data));
}

namespace {
#define HEARTH_RUN_COLUMNS                                                                                          \
  "id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, created_at, finished_at, error, " \
  "lease_owner, lease_heartbeat"
RunRecord read_run(const PGresult* res, int i) {
  RunRecord r;
  read_all(res, i, r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text, r.payload, r.repo, r.status,
           r.created_at, r.finished_at, r.error, r.lease_owner, r.lease_heartbeat);
  return r;
}
}  // namespace

Result<int64_t> PgStore::last_event_seq(const std::string& run_id) {
  int64_t seq = 0;
  auto s = rows("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=$1", "cannot read events",
                [&](const PGresult* r, int i) { seq = pg::cell_int(r, i, 0); }, run_id);
  if (!s.ok()) return s.error();
  return seq;
}

Result<std::vector<std::string>> PgStore::interrupted_runs() {
  std::vector<std::string> out;
  auto s = rows("SELECT id FROM runs WHERE status='running' ORDER BY created_at, ordinal", "cannot list runs",
                [&](const PGresult* r, int i) { out.push_back(pg::cell(r, i, 0)); });
  if (!s.ok()) return s.error();
  return out;
}

Result<bool> PgStore::run_exists(const std::string& run_id) {
  bool found = false;
  auto s = rows("SELECT 1 FROM runs WHERE id=$1", "cannot read runs", [&](const PGresult*, int) { found = true; },
                run_id);
  if (!s.ok()) return s.error();
  return found;
}

Result<std::vector<RunRecord>> PgStore::list_runs(int limit, const std::string& workflow_filter) {
  std::vector<RunRecord> out;
  auto s = rows("SELECT " HEARTH_RUN_COLUMNS
                " FROM runs WHERE ($1 = '' OR workflow = $1) ORDER BY created_at DESC, ordinal DESC LIMIT $2",
                "cannot list runs", [&](const PGresult* r, int i) { out.push_back(read_run(r, i)); }, workflow_filter,
                limit);
  if (!s.ok()) return s.error();
  return out;
}

Result<RunRecord> PgStore::load_run(const std::string& run_id) {
  std::optional<RunRecord> run;
  auto s = rows("SELECT " HEARTH_RUN_COLUMNS " FROM runs WHERE id=$1", "cannot read the run",
                [&](const PGresult* r, int i) { run = read_run(r, i); }, run_id);
  if (!s.ok()) return s.error();
  if (!run) return Error{"no run with id '" + run_id + "' in " + shown_ + " (see `hearth runs`)"};
  return std::move(*run);
}

Result<std::vector<StepRecord>> PgStore::load_steps(const std::string& run_id) {
  std::vector<StepRecord> steps;
  auto s = rows(
      "SELECT step_id, position, status, attempts, exit_code, started_at, finished_at, outputs, reason, "
      "retry_at, failures, interruptions, result FROM steps WHERE run_id=$1 ORDER BY position",
      "cannot read steps",
      [&](const PGresult* r, int i) {
        StepRecord& x = steps.emplace_back();
        read_all(r, i, x.id, x.position, x.status, x.attempts, x.exit_code, x.started_at, x.finished_at, x.outputs,
                 x.reason, x.retry_at, x.failures, x.interruptions, x.result);
      },
      run_id);
  if (!s.ok()) return s.error();
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < steps.size(); ++i) by_id.emplace(steps[i].id, i);
  s = rows(
      "SELECT step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail, output_bytes "
      "FROM attempts WHERE run_id=$1 ORDER BY step_id, number",
      "cannot read attempts",
      [&](const PGresult* r, int i) {
        AttemptRecord a;
        read_all(r, i, a.step_id, a.number, a.started_at, a.finished_at, a.exit_code, a.signal, a.reason,
                 BytesOut{a.output_tail}, a.output_bytes);
        if (auto it = by_id.find(a.step_id); it != by_id.end()) steps[it->second].attempt_list.push_back(std::move(a));
      },
      run_id);
  if (!s.ok()) return s.error();
  return steps;
}

Result<std::vector<EventRecord>> PgStore::load_events(const std::string& run_id, int64_t after_seq) {
  std::vector<EventRecord> out;
  auto s = rows(
      "SELECT seq, at, type, step_id, data FROM events WHERE run_id=$1 AND seq>$2 ORDER BY seq", "cannot read events",
      [&](const PGresult* r, int i) {
        EventRecord& e = out.emplace_back();
        e.run_id = run_id;
        read_all(r, i, e.seq, e.at, e.type, e.step_id, e.data);
      },
      run_id, after_seq);
  if (!s.ok()) return s.error();
  return out;
}

}  // namespace hearth::engine
