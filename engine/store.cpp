#include "engine/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "engine/checkout_records.h"
#include "engine/compiled_workflows.h"
#include "engine/pg_store.h"
#include "engine/sqlite_fresh_schema.h"
#include "engine/sqlite_migrations.h"
#include "engine/store_image.h"
#include "engine/store_sql.h"
#include "engine/write_turns.h"
#include "util/write_all.h"

namespace hearth::engine {

using namespace sql;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

constexpr int kSchemaVersion = kSqliteSchemaVersion;
static_assert(kSqliteFreshSchemaVersion == kSchemaVersion, "sqlite_fresh_schema.h is stale: rebuild it");

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

// How long a write waits for another connection's lock before it fails.
constexpr auto kLockWait = std::chrono::seconds(5);

// A new state database is made under a name of its own beside its place:
// "state.db-new-" and a random suffix (.hearth/.gitignore covers
// "state.db-*").
std::string new_file_name(const std::string& path) {
  static const char kHex[] = "0123456789abcdef";
  std::random_device random;
  std::string name = path + "-new-";
  for (int i = 0; i < 4; ++i) {
    unsigned bits = random();
    for (int j = 0; j < 4; ++j, bits >>= 4) name += kHex[bits & 15];
  }
  return name;
}

// What a making killed before its rename left: removed once ten minutes
// old, which no making in progress is (it takes milliseconds).
void remove_old_new_files(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + "-new-";
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::minutes(10);
  for (fs::directory_iterator it(target.parent_path().empty() ? "." : target.parent_path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::error_code time_ec;
    auto when = fs::symlink_status(it->path(), time_ec).type() == fs::file_type::regular
                    ? fs::last_write_time(it->path(), time_ec)
                    : cutoff;  // not a file this code made: old enough to go
    if (!time_ec && when <= cutoff) ::unlink(it->path().c_str());
  }
}

}  // namespace

// SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms and on: a
// writer that misses the lock a few times sleeps tens of milliseconds,
// though another connection's commit (the intake's writer beside the run
// store, hearth serve beside hearth run) holds it for well under one. This
// one sleeps 50 us, doubling up to 1 ms, and gives up after kLockWait.
int wait_for_lock(void* deadline_ns, int count) noexcept {
  using namespace std::chrono;
  auto& deadline = *static_cast<int64_t*>(deadline_ns);
  int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  if (count == 0) deadline = now + duration_cast<nanoseconds>(kLockWait).count();
  if (now >= deadline) return 0;
  int64_t sleep_us = count < 5 ? int64_t{50} << count : 1000;
  ::usleep(static_cast<useconds_t>(sleep_us));
  return 1;
}

int SqliteStore::schema_version() { return kSchemaVersion; }

Result<std::unique_ptr<Store>> SqliteStore::open(const std::string& path, const char* vfs, std::string local_dir) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{"cannot create the directory for the state database " + path + ": " + ec.message()};
  ignore_state_files(parent);
  if (struct stat st; ::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    if (auto s = make_new_file(path, vfs); !s.ok()) return Error{s.message()};
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  store->local_dir_ = local_dir.empty() ? parent.string() : std::move(local_dir);
  store->custom_vfs_ = vfs != nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           vfs);
  if (rc != SQLITE_OK) {
    return Error{"cannot open the state database " + path + ": " +
                 (store->db_ ? sqlite3_errmsg(store->db_) : sqlite3_errstr(rc))};
  }
  sqlite3_busy_handler(store->db_, wait_for_lock, &store->lock_deadline_ns_);
  store->turns_ = WriteTurns::of(path);
  // A new file gets 2 KiB pages (an existing one keeps its own: SQLite
  // ignores the setting once the file has a page). A step's checkpoint
  // rewrites two or three small rows on the steps and events leaves; with
  // 4 KiB pages that was 8.8 KB to the log per checkpoint, with 2 KiB pages
  // 4.7 KB, and as fast (docs/performance.md, "2 KiB pages"). Must come
  // before WAL is asked for, which writes page 1.
  if (auto s = store->exec("PRAGMA page_size=2048"); !s.ok()) return Error{s.message()};
  // Two processes opening a new file at once both ask for WAL; SQLite
  // answers one of them "locked" at once, without its busy handler (waiting
  // could deadlock). It is asked again until the other one is done.
  for (auto until = std::chrono::steady_clock::now() + kLockWait;;) {
    rc = sqlite3_exec(store->db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (rc != SQLITE_BUSY || std::chrono::steady_clock::now() >= until) break;
    ::usleep(1000);
  }
  if (rc != SQLITE_OK) return Error{store->fail("cannot run 'PRAGMA journal_mode=WAL'").message()};
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (auto s = store->exec(pragma); !s.ok()) return Error{s.message()};
  }
  if (auto s = store->migrate(); !s.ok()) return Error{s.message()};
  return std::unique_ptr<Store>(std::move(store));
}

// A new state database is made whole in a file of its own beside `path`:
// 2 KiB pages, the schema, the engine's parts' tables (compiled workflows,
// checked-out commits; the webhook queue's are made by `hearth serve`), WAL
// mode. That file is the build's image of it (store_image.h), written in one
// go; without an image, or with a VFS the caller named (which must see every
// write: fault injection, an embedding program's own VFS), it is made by SQL
// without a journal or a sync (build_new_file). Then the file is synced once
// and renamed into place without replacing anything (RENAME_NOREPLACE): a
// file at `path` is complete or absent. Made in place, the same cost 7 syncs
// (the journal's switch to WAL alone 4). Of two processes making it at once,
// the first rename wins and the other drops its copy. The directory is not
// synced here: the first commit to the store creates its log, state.db-wal,
// and SQLite syncs the directory with that log's first sync, which makes the
// rename durable before anything is committed to the file; a crash before
// that loses only an empty store, made again on the next open.
Status SqliteStore::make_new_file(const std::string& path, const char* vfs) {
  remove_old_new_files(path);
  const std::string temp = new_file_name(path);
  struct RemoveTemp {
    const std::string& temp;
    bool keep = false;
    ~RemoveTemp() {
      if (keep) return;
      for (const char* suffix : {"", "-journal", "-wal", "-shm"}) ::unlink((temp + suffix).c_str());
    }
  } remove_temp{temp};
  const std::string_view image = vfs ? std::string_view() : fresh_store_image();
  if (image.empty()) {
    if (auto s = build_new_file(temp, vfs); !s.ok()) return s;
  }
  int fd = image.empty() ? ::open(temp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                         : ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return Error{"cannot make the state database " + path + ": cannot open " + temp + ": " + std::strerror(errno)};
  errno = 0;
  if (!util::write_all(fd, image.data(), image.size())) {
    std::string why = errno != 0 ? std::strerror(errno) : "nothing written";
    ::close(fd);
    return Error{"cannot make the state database " + path + ": cannot write " + temp + ": " + why};
  }
  if (::fdatasync(fd) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return Error{"cannot make the state database " + path + ": cannot sync " + temp + ": " + why};
  }
  ::close(fd);
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
    remove_temp.keep = true;
    return {};
  }
  // A file system without RENAME_NOREPLACE: a hard link fails the same way
  // on an existing name. Where neither works the file is made in place.
  if (errno == EINVAL || errno == ENOSYS) {
    (void)::link(temp.c_str(), path.c_str());
    return {};
  }
  if (errno == EEXIST) return {};  // another process made it first: its file is used
  return Error{"cannot make the state database " + path + ": cannot rename " + temp + " to it: " +
               std::strerror(errno)};
}

Status SqliteStore::build_new_file(const std::string& file, const char* vfs) {
  std::unique_ptr<SqliteStore> fresh(new SqliteStore(file));
  int rc = sqlite3_open_v2(file.c_str(), &fresh->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           vfs);
  if (rc != SQLITE_OK)
    return Error{"cannot make the state database " + file + ": " +
                 (fresh->db_ ? sqlite3_errmsg(fresh->db_) : sqlite3_errstr(rc))};
  for (const char* pragma : {"PRAGMA page_size=2048", "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                             "PRAGMA foreign_keys=ON"}) {
    if (auto s = fresh->exec(pragma); !s.ok()) return s;
  }
  if (auto s = fresh->migrate(); !s.ok()) return s;
  if (auto s = prepare_compiled_workflows(*fresh); !s.ok()) return s;
  if (auto s = prepare_checkout_records(*fresh); !s.ok()) return s;
  return fresh->exec("PRAGMA journal_mode=WAL");  // closed when `fresh` goes: its empty log with it
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
  if (db_) sqlite3_close(db_);  // rolls back a transaction left open
  if (has_turn_) turns_->give();
}

Status SqliteStore::fail(const std::string& what) {
  std::string msg = "state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
  if (sqlite3_errcode(db_) == SQLITE_CORRUPT || sqlite3_errcode(db_) == SQLITE_NOTADB)
    msg += " (the file is damaged; restore it or move it aside to start afresh)";
  return fail_with_message(std::move(msg));
}

Status SqliteStore::fail_with(const std::string& message) {
  return fail_with_message("state database " + path_ + ": " + message);
}

Status SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return fail(std::string("cannot run '") + std::string(sql).substr(0, 40) + "'");
  }
  return {};
}

// Every write transaction: this process's turn at the file (write_turns.h),
// then SQLite's lock, which other processes may hold.
Status SqliteStore::begin_write() {
  if (turns_ && !has_turn_) {
    if (!turns_->take(std::chrono::steady_clock::now() + kLockWait))
      return fail_with("cannot start a write: the database was locked by another writer of this process for " +
                       std::to_string(std::chrono::seconds(kLockWait).count()) + " s");
    has_turn_ = true;
  }
  Status s = exec("BEGIN IMMEDIATE");
  if (!s.ok()) end_write();
  return s;
}

void SqliteStore::end_write() {
  if (!has_turn_ || !sqlite3_get_autocommit(db_)) return;  // still in a transaction: a ROLLBACK follows
  has_turn_ = false;
  turns_->give();
}

Status SqliteStore::migrate() {
  // An up-to-date file (every open but the first) is known by a read,
  // without taking the write lock.
  if (sqlite3_stmt* st = nullptr; sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK) {
    bool current = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == kSchemaVersion;
    sqlite3_finalize(st);
    if (current) return {};
  }
  // The version is read inside the write transaction: two processes opening
  // a fresh store at once must not both migrate it. Every step due goes into
  // that one transaction: an upgrade is whole or not at all, and a new store
  // costs one commit (one fsync), not one per version.
  if (auto s = begin_write(); !s.ok()) return s;
  struct EndWrite {
    SqliteStore* s;
    ~EndWrite() { s->end_write(); }
  } end_write{this};
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
  // A new file gets the latest schema at once; an older one each step due.
  if (version == 0) {
    if (auto s = exec(kSqliteFreshSchema); !s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
    version = kSchemaVersion;
  }
  for (; version < kSchemaVersion; ++version) {
    if (auto s = exec(kSqliteMigrations[version]); !s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
  }
  std::string set = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
  if (auto s = exec(set.c_str()); !s.ok()) {
    (void)exec("ROLLBACK");
    return s;
  }
  return exec("COMMIT");
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
  if (staging()) {  // attached: nothing touches the connection until a read or the pool
    if (in_transaction_) return fail_with("cannot start a transaction within a transaction");
    in_transaction_ = true;
    live_ = false;
    staged_.clear();
    return {};
  }
  if (auto s = begin_write(); !s.ok()) return s;
  in_transaction_ = true;
  return {};
}

Status SqliteStore::commit() {
  if (!sticky_.ok()) {
    rollback();
    return sticky_;
  }
  if (durability_) return commit_later();
  if (auto s = exec("COMMIT"); !s.ok()) {
    rollback();
    return s;
  }
  end_write();
  in_transaction_ = false;
  counted_commit();
  commit_time_ += std::chrono::steady_clock::now() - begun_;
  return {};
}

void SqliteStore::rollback() {
  staged_.clear();
  if (!in_transaction_) return;
  in_transaction_ = false;
  if (durability_ && !live_) return;  // nothing of it reached the connection
  live_ = false;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  end_write();
}


Status SqliteStore::insert_run(const RunRecord& r) {
  return stage([this, r] { return write(
      "INSERT INTO runs (id, workflow, workflow_path, workflow_hash, workflow_text, payload, repo, status, "
      "created_at, finished_at, error, lease_owner, lease_heartbeat, number) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, (SELECT COALESCE(MAX(number), 0) + 1 FROM runs))",
      "cannot record the run", r.id, r.workflow, r.workflow_path, r.workflow_hash, r.workflow_text,
      to_db_json(r.payload), r.repo, r.status, r.created_at, r.finished_at, r.error, r.lease_owner, r.lease_heartbeat); });
}

Status SqliteStore::set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat) {
  return stage([this, run_id, owner, heartbeat] {
    return write("UPDATE runs SET lease_owner=?, lease_heartbeat=? WHERE id=?", "cannot record the run's lease", owner,
                 heartbeat, run_id);
  });
}

Status SqliteStore::update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                              const std::string& text) {
  return stage([this, run_id, path, hash, text] {
    return write("UPDATE runs SET workflow_path=?, workflow_hash=?, workflow_text=? WHERE id=?",
                 "cannot record the run's workflow", path, hash, text, run_id);
  });
}

Status SqliteStore::update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                         const std::string& error) {
  return stage([this, run_id, status, finished_at, error] {
    return write("UPDATE runs SET status=?, finished_at=?, error=? WHERE id=?", "cannot update the run", status,
                 finished_at, error, run_id);
  });
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
