#include "engine/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "engine/pg_store.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

constexpr int kSchemaVersion = 10;

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
    // 3: created the webhook queue of `hearth serve`, whose tables are now
    // its own (ci/delivery_queue.cpp: it adopts a table this step made).
    "",
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
    // 7: added the queue's crash counter; the queue's own now (see 3).
    "",
    // 8: the schema versions of the parts outside the engine that keep
    // tables here (StoreTables::migrate).
    R"sql(
CREATE TABLE part_versions (
  part    TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
)sql",
    // 9: the rows a step's checkpoint touches live in their key's b-tree
    // (WITHOUT ROWID): one page each of steps, attempts and events goes to
    // the log per checkpoint, not a table page and an index page of each.
    R"sql(
CREATE TABLE steps_v9 (
  run_id        TEXT NOT NULL REFERENCES runs(id),
  step_id       TEXT NOT NULL,
  position      INTEGER NOT NULL,
  status        TEXT NOT NULL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  exit_code     INTEGER,
  started_at    INTEGER,
  finished_at   INTEGER,
  outputs       TEXT NOT NULL DEFAULT '{}',
  reason        TEXT NOT NULL DEFAULT '',
  retry_at      INTEGER,
  failures      INTEGER NOT NULL DEFAULT 0,
  interruptions INTEGER NOT NULL DEFAULT 0,
  result        TEXT,
  PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
INSERT INTO steps_v9 (run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
                      reason, retry_at, failures, interruptions, result)
  SELECT run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
         reason, retry_at, failures, interruptions, result FROM steps;
CREATE TABLE attempts_v9 (
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
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v9(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempts_v9 (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail,
                         output_bytes)
  SELECT run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail, output_bytes
  FROM attempts;
CREATE TABLE events_v9 (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  seq     INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO events_v9 (run_id, seq, at, type, step_id, data) SELECT run_id, seq, at, type, step_id, data FROM events;
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE steps;
ALTER TABLE steps_v9 RENAME TO steps;
ALTER TABLE attempts_v9 RENAME TO attempts;
ALTER TABLE events_v9 RENAME TO events;
)sql",
    // 10: a chain step's checkpoint (one step finished, the next started,
    // their events) dirties two pages: the steps leaf holding both steps and
    // the last page of events. A step's last attempt lives in its step row
    // (attempts keeps the earlier ones, output tails their own table, written
    // only when not empty), and events are a rowid table keyed by the run's
    // number and the sequence (number * 2^32 + seq), so appending to the
    // newest run fills its last page instead of rebalancing three. A step
    // row is written with `slack` bytes that its start and its end give
    // back as its times and reason arrive (store_steps.cpp), so rows do not
    // outgrow their page while a run goes on: that would rewrite three.
    R"sql(
ALTER TABLE runs ADD COLUMN number INTEGER;
UPDATE runs SET number = rowid;
CREATE UNIQUE INDEX runs_by_number ON runs(number);
CREATE UNIQUE INDEX runs_number_of_id ON runs(id, number);
CREATE TABLE steps_v10 (
  run_id               TEXT NOT NULL REFERENCES runs(id),
  step_id              TEXT NOT NULL,
  position             INTEGER NOT NULL,
  status               TEXT NOT NULL,
  attempts             INTEGER NOT NULL DEFAULT 0,
  exit_code            INTEGER,
  started_at           INTEGER,
  finished_at          INTEGER,
  outputs              TEXT NOT NULL DEFAULT '{}',
  reason               TEXT NOT NULL DEFAULT '',
  retry_at             INTEGER,
  failures             INTEGER NOT NULL DEFAULT 0,
  interruptions        INTEGER NOT NULL DEFAULT 0,
  result               TEXT,
  attempt              INTEGER NOT NULL DEFAULT 0,
  attempt_started_at   INTEGER,
  attempt_finished_at  INTEGER,
  attempt_exit_code    INTEGER,
  attempt_signal       INTEGER NOT NULL DEFAULT 0,
  attempt_reason       TEXT NOT NULL DEFAULT '',
  attempt_output_bytes INTEGER NOT NULL DEFAULT 0,
  slack                BLOB,
  PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
INSERT INTO steps_v10 (run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
                       reason, retry_at, failures, interruptions, result, attempt, attempt_started_at,
                       attempt_finished_at, attempt_exit_code, attempt_signal, attempt_reason, attempt_output_bytes)
  SELECT s.run_id, s.step_id, s.position, s.status, s.attempts, s.exit_code, s.started_at, s.finished_at, s.outputs,
         s.reason, s.retry_at, s.failures, s.interruptions, s.result, COALESCE(a.number, 0), a.started_at,
         a.finished_at, a.exit_code, COALESCE(a.signal, 0), COALESCE(a.reason, ''), COALESCE(a.output_bytes, 0)
  FROM steps s LEFT JOIN attempts a ON a.run_id = s.run_id AND a.step_id = s.step_id
    AND a.number = (SELECT MAX(number) FROM attempts m WHERE m.run_id = s.run_id AND m.step_id = s.step_id);
CREATE TABLE attempts_v10 (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  exit_code    INTEGER,
  signal       INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v10(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempts_v10 (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_bytes)
  SELECT run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_bytes FROM attempts a
  WHERE number < (SELECT MAX(number) FROM attempts m WHERE m.run_id = a.run_id AND m.step_id = a.step_id);
CREATE TABLE attempt_tails (
  run_id  TEXT NOT NULL,
  step_id TEXT NOT NULL,
  number  INTEGER NOT NULL,
  tail    BLOB NOT NULL,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v10(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempt_tails (run_id, step_id, number, tail)
  SELECT run_id, step_id, number, output_tail FROM attempts WHERE length(output_tail) > 0;
CREATE TABLE events_v10 (
  key     INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO events_v10 (key, at, type, step_id, data)
  SELECT r.number * 4294967296 + e.seq, e.at, e.type, e.step_id, e.data FROM events e JOIN runs r ON r.id = e.run_id;
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE steps;
ALTER TABLE steps_v10 RENAME TO steps;
ALTER TABLE attempts_v10 RENAME TO attempts;
ALTER TABLE events_v10 RENAME TO events;
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

int SqliteStore::schema_version() { return kSchemaVersion; }

Result<std::unique_ptr<Store>> SqliteStore::open(const std::string& path, const char* vfs, std::string local_dir) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{"cannot create the directory for the state database " + path + ": " + ec.message()};
  ignore_state_files(parent);
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  store->local_dir_ = local_dir.empty() ? parent.string() : std::move(local_dir);
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
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> Store::open(const std::string& location, const char* vfs, const std::string& local_dir) {
  if (!is_postgres_location(location)) return SqliteStore::open(location, vfs, local_dir);
  if (vfs) return Error{"a SQLite VFS was named for the PostgreSQL store " + redact_url(location)};
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  return PgStore::open(location, local_dir.empty() ? (cwd / ".hearth").string() : local_dir);
}

SqliteStore::~SqliteStore() {
  detach();
  for (auto& [sql, st] : statements_) sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
}

Status SqliteStore::fail(const std::string& what) {
  std::string msg = "state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
  if (sqlite3_errcode(db_) == SQLITE_CORRUPT || sqlite3_errcode(db_) == SQLITE_NOTADB)
    msg += " (the file is damaged; restore it or move it aside to start afresh)";
  if (sticky_.ok()) sticky_ = Error{msg};
  return sticky_;
}

Status SqliteStore::fail_with(const std::string& message) {
  if (sticky_.ok()) sticky_ = Error{"state database " + path_ + ": " + message};
  return sticky_;
}

Status SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return fail(std::string("cannot run '") + std::string(sql).substr(0, 40) + "'");
  }
  return {};
}

Status SqliteStore::migrate() {
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

sqlite3_stmt* SqliteStore::prepare(const char* sql) {
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

Status SqliteStore::step_done(sqlite3_stmt* st, const char* what) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(what);
  return {};
}

Status SqliteStore::begin() {
  if (!sticky_.ok()) return sticky_;
  begun_ = std::chrono::steady_clock::now();
  if (auto s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  in_transaction_ = true;
  return {};
}

Status SqliteStore::commit() {
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

void SqliteStore::rollback() {
  if (!in_transaction_) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  in_transaction_ = false;
}


Status SqliteStore::insert_run(const RunRecord& r) {
  return write(
      "INSERT INTO runs (id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, "
      "created_at, finished_at, error, lease_owner, lease_heartbeat, number) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, (SELECT COALESCE(MAX(number), 0) + 1 FROM runs))",
      "cannot record the run", r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text,
      to_db_json(r.payload), r.repo, r.status, r.created_at, r.finished_at, r.error, r.lease_owner, r.lease_heartbeat);
}

Status SqliteStore::set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat) {
  return write("UPDATE runs SET lease_owner=?, lease_heartbeat=? WHERE id=?", "cannot record the run's lease", owner,
               heartbeat, run_id);
}

Status SqliteStore::update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                              const std::string& text) {
  return write("UPDATE runs SET workflow_path=?, workflow_hash=?, workflow_text=? WHERE id=?",
               "cannot record the run's workflow", path, hash, text, run_id);
}

Status SqliteStore::update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                         const std::string& error) {
  return write("UPDATE runs SET status=?, finished_at=?, error=? WHERE id=?", "cannot update the run", status,
               finished_at, error, run_id);
}

namespace {
const char* kRunColumns =
    "id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, created_at, finished_at, error, "
    "lease_owner, lease_heartbeat";
RunRecord read_run(sqlite3_stmt* st) {
  RunRecord r;
  read_all(st, r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text, r.payload, r.repo, r.status,
           r.created_at, r.finished_at, r.error, r.lease_owner, r.lease_heartbeat);
  return r;
}
}  // namespace

Result<std::vector<std::string>> SqliteStore::interrupted_runs() {
  std::vector<std::string> out;
  auto s = rows("SELECT id FROM runs WHERE status='running' ORDER BY created_at", "cannot list runs",
                [&](sqlite3_stmt* st) { out.push_back(col_text(st, 0)); });
  if (!s.ok()) return s.error();
  return out;
}

Result<bool> SqliteStore::run_exists(const std::string& run_id) {
  bool found = false;
  auto s = rows("SELECT 1 FROM runs WHERE id=?", "cannot read runs", [&](sqlite3_stmt*) { found = true; }, run_id);
  if (!s.ok()) return s.error();
  return found;
}

Result<std::vector<RunRecord>> SqliteStore::list_runs(int limit, const std::string& workflow_filter) {
  static const std::string sql = std::string("SELECT ") + kRunColumns +
                                 " FROM runs WHERE (?1 = '' OR workflow = ?1) ORDER BY created_at DESC, rowid DESC LIMIT ?2";
  std::vector<RunRecord> out;
  auto s = rows(sql.c_str(), "cannot list runs", [&](sqlite3_stmt* st) { out.push_back(read_run(st)); },
                workflow_filter, limit);
  if (!s.ok()) return s.error();
  return out;
}

Result<RunRecord> SqliteStore::load_run(const std::string& run_id) {
  static const std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE id=?";
  std::optional<RunRecord> run;
  auto s = rows(sql.c_str(), "cannot read the run", [&](sqlite3_stmt* st) { run = read_run(st); }, run_id);
  if (!s.ok()) return s.error();
  if (!run) return Error{"no run with id '" + run_id + "' in " + path_ + " (see `hearth runs`)"};
  return std::move(*run);
}

}  // namespace hearth::engine
