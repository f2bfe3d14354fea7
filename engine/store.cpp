#include "engine/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <unordered_map>

#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

constexpr int kSchemaVersion = 7;

// Each entry migrates from version (index) to index + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  id            TEXT PRIMARY KEY,
  workflow      TEXT NOT NULL,
  workflow_path TEXT NOT NULL,
  workflow_hash TEXT NOT NULL,
  workflow_text TEXT NOT NULL,
  payload       TEXT NOT NULL,
  repo          TEXT NOT NULL,
  status        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE TABLE steps (
  run_id      TEXT NOT NULL REFERENCES runs(id),
  step_id     TEXT NOT NULL,
  position    INTEGER NOT NULL,
  status      TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  exit_code   INTEGER,
  started_at  INTEGER,
  finished_at INTEGER,
  outputs     TEXT NOT NULL DEFAULT '{}',
  reason      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id)
);
CREATE TABLE attempts (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  exit_code    INTEGER,
  signal       INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_tail  BLOB NOT NULL DEFAULT x'',
  output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps(run_id, step_id)
);
CREATE TABLE events (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  seq     INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
);
)sql",
    // 2: retries wait durably; a run is leased to one engine process at a time.
    R"sql(
ALTER TABLE steps ADD COLUMN retry_at INTEGER;
ALTER TABLE steps ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_heartbeat INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_status ON runs(status);
)sql",
    // 3: the webhook queue of `hearth serve` (store_deliveries.cpp).
    R"sql(
CREATE TABLE deliveries (
  id          TEXT PRIMARY KEY,
  event       TEXT NOT NULL,
  action      TEXT NOT NULL DEFAULT '',
  payload     TEXT NOT NULL DEFAULT '',
  digest      TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  state       TEXT NOT NULL,
  run_ids     TEXT NOT NULL DEFAULT '[]',
  workflows   TEXT NOT NULL DEFAULT '[]',
  error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_by_state ON deliveries(state, received_at);
CREATE INDEX deliveries_by_digest ON deliveries(digest);
)sql",
    // 4: the journal of granted-command calls (store_calls.cpp).
    R"sql(
CREATE TABLE command_calls (
  run_id        TEXT NOT NULL,
  step_id       TEXT NOT NULL,
  attempt       INTEGER NOT NULL,
  sequence      INTEGER NOT NULL,
  command       TEXT NOT NULL,
  argv          TEXT NOT NULL,
  cwd           TEXT NOT NULL,
  started_at    INTEGER NOT NULL,
  allowed       INTEGER NOT NULL,
  rule          TEXT NOT NULL DEFAULT '',
  finished_at   INTEGER,
  outcome       TEXT NOT NULL DEFAULT 'running',
  exit_code     INTEGER,
  output_bytes  INTEGER NOT NULL DEFAULT 0,
  output_sha256 TEXT NOT NULL DEFAULT '',
  output_tail   BLOB NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id, attempt, sequence)
);
)sql",
    // 5: skill and prompt steps: the validated result, and each attempt's
    // conversation as last checkpointed (store_agent.cpp).
    R"sql(
ALTER TABLE steps ADD COLUMN result TEXT;
CREATE TABLE agent_checkpoints (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  INTEGER NOT NULL,
  turns    INTEGER NOT NULL,
  state    TEXT NOT NULL,
  saved_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt)
);
)sql",
    // 6: a checkpoint appends the conversation's new messages instead of
    // rewriting all of them: the row keeps the rest of the state and
    // messages_count; the messages are rows of their own.
    R"sql(
CREATE TABLE agent_messages (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  message  TEXT NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt, seq)
) WITHOUT ROWID;
INSERT INTO agent_messages (run_id, step_id, attempt, seq, message)
  SELECT c.run_id, c.step_id, c.attempt, CAST(m.key AS INTEGER), m.value
  FROM agent_checkpoints c, json_each(c.state, '$.messages') m;
UPDATE agent_checkpoints
  SET state = json_set(json_remove(state, '$.messages'), '$.messages_count',
                       COALESCE(json_array_length(state, '$.messages'), 0));
)sql",
    // 7: how many times `hearth serve` began processing a delivery without
    // ending (store_deliveries.cpp): a delivery that keeps crashing the
    // server is marked failed instead of crashing every restart.
    R"sql(
ALTER TABLE deliveries ADD COLUMN unended_starts INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(sizeof kMigrations / sizeof kMigrations[0] == kSchemaVersion);

// A state directory named .hearth sits in a repository beside its committed
// workflows: keep the engine's files out of `git status`. Written once, never
// through a link (O_EXCL | O_NOFOLLOW); a user's own .gitignore is kept.
void ignore_state_files(const std::filesystem::path& dir) {
  if (dir.filename() != ".hearth") return;
  int fd = ::open((dir / ".gitignore").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  static const char kText[] =
      "# Hearth's state (runs, scratch files, per-run workspaces); the workflows stay tracked.\n"
      "/state.db\n/state.db-*\n/tmp/\n/workspaces/\n";
  ssize_t n = ::write(fd, kText, sizeof kText - 1);
  (void)n;  // best effort: the state works without it
  ::close(fd);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const char* vfs) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{"cannot create the directory for the state database " + path + ": " + ec.message()};
  ignore_state_files(parent);
  std::unique_ptr<Store> store(new Store(path));
  store->custom_vfs_ = vfs != nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           vfs);
  if (rc != SQLITE_OK) {
    return Error{"cannot open the state database " + path + ": " +
                 (store->db_ ? sqlite3_errmsg(store->db_) : sqlite3_errstr(rc))};
  }
  sqlite3_busy_timeout(store->db_, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (auto s = store->exec(pragma); !s.ok()) return Error{s.message()};
  }
  if (auto s = store->migrate(); !s.ok()) return Error{s.message()};
  return store;
}

Store::~Store() {
  detach();
  for (auto& [sql, st] : statements_) sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
}

Status Store::fail(const std::string& what) {
  std::string msg = "state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
  if (sqlite3_errcode(db_) == SQLITE_CORRUPT || sqlite3_errcode(db_) == SQLITE_NOTADB)
    msg += " (the file is damaged; restore it or move it aside to start afresh)";
  if (sticky_.ok()) sticky_ = Error{msg};
  return sticky_;
}

Status Store::fail_with(const std::string& message) {
  if (sticky_.ok()) sticky_ = Error{"state database " + path_ + ": " + message};
  return sticky_;
}

Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return fail(std::string("cannot run '") + std::string(sql).substr(0, 40) + "'");
  }
  return {};
}

Status Store::migrate() {
  // The version is read inside the write transaction: two processes opening
  // a fresh store at once must not both migrate it.
  for (;;) {
    if (auto s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &st, nullptr) != SQLITE_OK) {
      (void)exec("ROLLBACK");
      return fail("cannot read the schema version");
    }
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (version > kSchemaVersion) {
      (void)exec("ROLLBACK");
      return Error{"state database " + path_ + " has schema version " + std::to_string(version) +
                   ", newer than this hearth understands (" + std::to_string(kSchemaVersion) + "): upgrade hearth"};
    }
    if (version == kSchemaVersion) return exec("COMMIT");
    if (auto s = exec(kMigrations[version]); !s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
    std::string set = "PRAGMA user_version=" + std::to_string(version + 1);
    if (auto s = exec(set.c_str()); !s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
    if (auto s = exec("COMMIT"); !s.ok()) return s;
  }
}

sqlite3_stmt* Store::prepare(const char* sql) {
  for (auto& [key, st] : statements_)
    if (key == sql) return st;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    (void)fail("cannot prepare a statement");
    return nullptr;
  }
  statements_.emplace_back(sql, st);
  return st;
}

Status Store::step_done(sqlite3_stmt* st, const char* what) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(what);
  return {};
}

Status Store::begin() {
  if (!sticky_.ok()) return sticky_;
  begun_ = std::chrono::steady_clock::now();
  if (auto s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  in_transaction_ = true;
  return {};
}

Status Store::commit() {
  if (!sticky_.ok()) {
    rollback();
    return sticky_;
  }
  if (auto s = exec("COMMIT"); !s.ok()) {
    rollback();
    return s;
  }
  in_transaction_ = false;
  ++commits_;
  commit_time_ += std::chrono::steady_clock::now() - begun_;
  return {};
}

void Store::rollback() {
  if (!in_transaction_) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  in_transaction_ = false;
}


Status Store::insert_run(const RunRecord& r) {
  return write(
      "INSERT INTO runs (id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, "
      "created_at, finished_at, error, lease_owner, lease_heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
      "cannot record the run", r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text,
      to_db_json(r.payload), r.repo, r.status, r.created_at, r.finished_at, r.error, r.lease_owner, r.lease_heartbeat);
}

Status Store::set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat) {
  return write("UPDATE runs SET lease_owner=?, lease_heartbeat=? WHERE id=?", "cannot record the run's lease", owner,
               heartbeat, run_id);
}

Status Store::update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                              const std::string& text) {
  return write("UPDATE runs SET workflow_path=?, workflow_hash=?, workflow_text=? WHERE id=?",
               "cannot record the run's workflow", path, hash, text, run_id);
}

Status Store::insert_step(const std::string& run_id, const StepRecord& s) {
  return write("INSERT INTO steps (run_id, step_id, position, status) VALUES (?,?,?,?)", "cannot record a step", run_id,
               s.id, s.position, s.status);
}

Status Store::update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                         const std::string& error) {
  return write("UPDATE runs SET status=?, finished_at=?, error=? WHERE id=?", "cannot update the run", status,
               finished_at, error, run_id);
}

Status Store::update_step(const std::string& run_id, const StepRecord& s) {
  return write(
      "UPDATE steps SET status=?, attempts=?, exit_code=?, started_at=?, finished_at=?, outputs=?, reason=?, "
      "retry_at=?, failures=?, interruptions=?, result=? WHERE run_id=? AND step_id=?",
      "cannot update a step", s.status, s.attempts, s.exit_code, s.started_at, s.finished_at, to_db_json(s.outputs),
      s.reason, s.retry_at, s.failures, s.interruptions,
      s.result.is_null() ? std::nullopt : std::optional<std::string>(to_db_json(s.result)), run_id, s.id);
}

Status Store::insert_attempt(const std::string& run_id, const AttemptRecord& a) {
  return write("INSERT INTO attempts (run_id, step_id, number, started_at) VALUES (?,?,?,?)",
               "cannot record an attempt", run_id, a.step_id, a.number, a.started_at);
}

Status Store::finish_attempt(const std::string& run_id, const AttemptRecord& a) {
  return write(
      "UPDATE attempts SET finished_at=?, exit_code=?, signal=?, reason=?, output_tail=?, output_bytes=? "
      "WHERE run_id=? AND step_id=? AND number=?",
      "cannot record an attempt's outcome", a.finished_at, a.exit_code, a.signal, a.reason, Blob{a.output_tail},
      a.output_bytes, run_id, a.step_id, a.number);
}

Status Store::insert_event(const EventRecord& e) {
  return write("INSERT INTO events (run_id, seq, at, type, step_id, data) VALUES (?,?,?,?,?,?)",
               "cannot record an event", e.run_id, e.seq, e.at, e.type, e.step_id, to_db_json(e.data));
}

namespace {
const char* kRunColumns =
    "id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, created_at, finished_at, error, "
    "lease_owner, lease_heartbeat";
RunRecord read_run(sqlite3_stmt* st) {
  RunRecord r;
  r.id = col_text(st, 0);
  r.workflow = col_text(st, 1);
  r.workflow_path = col_text(st, 2);
  r.workflow_hash = col_text(st, 3);
  r.workflow_text = col_text(st, 4);
  r.payload = col_json(st, 5);
  r.repo = col_text(st, 6);
  r.status = run_status_from(col_text(st, 7));
  r.created_at = sqlite3_column_int64(st, 8);
  r.finished_at = col_opt(st, 9);
  r.error = col_text(st, 10);
  r.lease_owner = col_text(st, 11);
  r.lease_heartbeat = sqlite3_column_int64(st, 12);
  return r;
}
}  // namespace

Result<int64_t> Store::last_event_seq(const std::string& run_id) {
  sqlite3_stmt* st = prepare("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  if (sqlite3_step(st) != SQLITE_ROW) return Error{fail("cannot read events").message()};
  return sqlite3_column_int64(st, 0);
}

Result<std::vector<std::string>> Store::interrupted_runs() {
  sqlite3_stmt* st = prepare("SELECT id FROM runs WHERE status='running' ORDER BY created_at");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(col_text(st, 0));
  if (rc != SQLITE_DONE) return Error{fail("cannot list runs").message()};
  return out;
}

Result<bool> Store::run_exists(const std::string& run_id) {
  sqlite3_stmt* st = prepare("SELECT 1 FROM runs WHERE id=?");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{fail("cannot read runs").message()};
  return rc == SQLITE_ROW;
}

Result<std::vector<RunRecord>> Store::list_runs(int limit, const std::string& workflow_filter) {
  static const std::string sql = std::string("SELECT ") + kRunColumns +
                                 " FROM runs WHERE (?1 = '' OR workflow = ?1) ORDER BY created_at DESC, rowid DESC LIMIT ?2";
  sqlite3_stmt* st = prepare(sql.c_str());
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, workflow_filter);
  sqlite3_bind_int(st, 2, limit);
  std::vector<RunRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out.push_back(read_run(st));
  if (rc != SQLITE_DONE) return Error{fail("cannot list runs").message()};
  return out;
}

Result<RunRecord> Store::load_run(const std::string& run_id) {
  static const std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE id=?";
  sqlite3_stmt* st = prepare(sql.c_str());
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return Error{"no run with id '" + run_id + "' in " + path_ + " (see `hearth runs`)"};
  if (rc != SQLITE_ROW) return Error{fail("cannot read the run").message()};
  return read_run(st);
}

Result<std::vector<StepRecord>> Store::load_steps(const std::string& run_id) {
  sqlite3_stmt* st = prepare(
      "SELECT step_id, position, status, attempts, exit_code, started_at, finished_at, outputs, reason, "
      "retry_at, failures, interruptions, result FROM steps WHERE run_id=? ORDER BY position");
  if (!st) return Error{sticky_.message()};
  std::vector<StepRecord> steps;
  {
    Reset reset{st};
    bind_text(st, 1, run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      StepRecord s;
      s.id = col_text(st, 0);
      s.position = sqlite3_column_int(st, 1);
      s.status = step_status_from(col_text(st, 2));
      s.attempts = sqlite3_column_int(st, 3);
      s.exit_code = col_opt(st, 4);
      s.started_at = col_opt(st, 5);
      s.finished_at = col_opt(st, 6);
      s.outputs = col_json(st, 7);
      s.reason = col_text(st, 8);
      s.retry_at = col_opt(st, 9);
      s.failures = sqlite3_column_int(st, 10);
      s.interruptions = sqlite3_column_int(st, 11);
      if (sqlite3_column_type(st, 12) != SQLITE_NULL) s.result = col_json(st, 12);
      steps.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) return Error{fail("cannot read steps").message()};
  }
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < steps.size(); ++i) by_id.emplace(steps[i].id, i);
  sqlite3_stmt* at = prepare(
      "SELECT step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail, output_bytes "
      "FROM attempts WHERE run_id=? ORDER BY step_id, number");
  if (!at) return Error{sticky_.message()};
  Reset reset{at};
  bind_text(at, 1, run_id);
  int rc;
  while ((rc = sqlite3_step(at)) == SQLITE_ROW) {
    AttemptRecord a;
    a.step_id = col_text(at, 0);
    a.number = sqlite3_column_int(at, 1);
    a.started_at = sqlite3_column_int64(at, 2);
    a.finished_at = col_opt(at, 3);
    a.exit_code = col_opt(at, 4);
    a.signal = sqlite3_column_int(at, 5);
    a.reason = col_text(at, 6);
    a.output_tail = col_blob(at, 7);
    a.output_bytes = sqlite3_column_int64(at, 8);
    if (auto it = by_id.find(a.step_id); it != by_id.end()) steps[it->second].attempt_list.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return Error{fail("cannot read attempts").message()};
  return steps;
}

Result<std::vector<EventRecord>> Store::load_events(const std::string& run_id, int64_t after_seq) {
  sqlite3_stmt* st =
      prepare("SELECT seq, at, type, step_id, data FROM events WHERE run_id=? AND seq>? ORDER BY seq");
  if (!st) return Error{sticky_.message()};
  Reset reset{st};
  bind_text(st, 1, run_id);
  sqlite3_bind_int64(st, 2, after_seq);
  std::vector<EventRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    EventRecord e;
    e.run_id = run_id;
    e.seq = sqlite3_column_int64(st, 0);
    e.at = sqlite3_column_int64(st, 1);
    e.type = col_text(st, 2);
    e.step_id = col_text(st, 3);
    e.data = col_json(st, 4);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return Error{fail("cannot read events").message()};
  return out;
}

}  // namespace hearth::engine
