// The store's fsync, off the loop thread (store.h: attach, when_durable).
//
// SQLite in WAL mode with synchronous=NORMAL appends a commit's pages to the
// log with write() and returns: the commit survives the process being killed
// (the pages are in the kernel), not a power loss. An fdatasync of the log
// makes every commit written before it durable. So the loop thread commits,
// and one fdatasync at a time runs on libuv's threadpool; whoever must not act
// before its commit is durable (a step's start, a webhook's 202, a run's
// result) waits for the fsync that covers it. Commits made while one fsync
// runs share the next: that is the group commit, with no thread of ours.
//
// Checkpoints (copying the log into the database file, with its own fsyncs)
// would stall a commit every thousand pages; they run on the threadpool too,
// through a second connection (a PASSIVE checkpoint never blocks a writer).
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include <sqlite3.h>
#include <uv.h>

#include "engine/sqlite_store.h"

namespace hearth::engine {

namespace {
constexpr int kCheckpointPages = 1000;  // SQLite's own autocheckpoint threshold
}

struct SqliteStore::Durability {
  SqliteStore* store = nullptr;  // null once the store is gone: the last callback deletes this
  uv_loop_t* loop = nullptr;
  int log_fd = -1;         // the write-ahead log, read-only: fdatasync needs no more
  std::string path;

  uv_fs_t sync_req{};
  bool syncing = false;
  int64_t syncing_upto = 0;  // commits the fsync in flight covers
  int64_t durable = 0;       // commits known to be on disk
  int64_t syncs = 0;
  struct Waiter {
    const void* owner;
    int64_t upto;
    std::function<void(const Status&)> fn;
  };
  std::deque<Waiter> waiting;

  uv_work_t checkpoint_req{};
  bool checkpointing = false;
  sqlite3* checkpointer = nullptr;  // used only on the threadpool, one job at a time

  ~Durability() {
    if (checkpointer) sqlite3_close(checkpointer);
    if (log_fd >= 0) ::close(log_fd);
  }
  bool dispatching = false;  // inside dispatch(): a waiter may detach the store meanwhile
  bool idle() const { return !syncing && !checkpointing && !dispatching; }

  void start_sync();
  void dispatch(const Status& result);
  static void on_synced(uv_fs_t* req) noexcept;
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) noexcept;
  static void checkpoint(uv_work_t* req) noexcept;
  static void on_checkpointed(uv_work_t* req, int status) noexcept;
};

Status SqliteStore::attach(uv_loop_s* loop) {
  if (durability_) {
    if (durability_->loop == loop) return {};
    return Error{"state database " + path_ + " is attached to another loop already"};
  }
  // A test's fault-injecting VFS injects its faults into SQLite's own syncs:
  // such a store keeps them.
  if (custom_vfs_) return {};
  if (!sticky_.ok()) return sticky_;
  int fd = ::open((path_ + "-wal").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Error{"state database " + path_ + ": cannot open its write-ahead log: " + std::strerror(errno)};
  // The log starts over once a checkpoint has copied all of it; the limit
  // makes it shrink then, instead of keeping its largest size on disk.
  if (auto s = exec("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=8388608"); !s.ok()) {
    ::close(fd);
    return s;
  }
  auto* d = new Durability;
  d->store = this;
  d->loop = loop;
  d->log_fd = fd;
  d->path = path_;
  d->durable = commits_;
  d->sync_req.data = d;
  d->checkpoint_req.data = d;
  durability_ = d;
  sqlite3_wal_hook(db_, &Durability::on_wal_commit, d);  // replaces the inline autocheckpoint
  return {};
}

void SqliteStore::when_durable(const void* owner, std::function<void(const Status&)> fn) {
  Durability* d = durability_;
  if (!sticky_.ok()) return fn(sticky_);
  if (!d || (d->waiting.empty() && d->durable >= commits_)) return fn({});
  d->waiting.push_back({owner, commits_, std::move(fn)});
  if (!d->syncing) d->start_sync();
}

void SqliteStore::forget(const void* owner) {
  if (!durability_) return;
  auto& w = durability_->waiting;
  for (auto it = w.begin(); it != w.end();) it = it->owner == owner ? w.erase(it) : std::next(it);
}

int64_t SqliteStore::syncs() const { return durability_ ? durability_->syncs : 0; }

// From ~SqliteStore too: what is committed is made durable here, the last time
// the store can; a job still running on the threadpool deletes `d` when done.
void SqliteStore::detach() {
  Durability* d = durability_;
  if (!d) return;
  durability_ = nullptr;
  sqlite3_wal_hook(db_, nullptr, nullptr);
  sqlite3_wal_autocheckpoint(db_, 1000);
  (void)sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  if (d->durable < commits_) (void)::fdatasync(d->log_fd);
  d->store = nullptr;
  d->waiting.clear();
  if (d->idle()) delete d;
}

void SqliteStore::Durability::start_sync() {
  syncing = true;
  syncing_upto = store->commits_;
  int rc = uv_fs_fdatasync(loop, &sync_req, log_fd, &Durability::on_synced);
  if (rc < 0) {
    syncing = false;
    (void)store->fail_with("cannot sync the write-ahead log: " + std::string(uv_strerror(rc)));
    dispatch(store->sticky_);
  }
}

void SqliteStore::Durability::on_synced(uv_fs_t* req) noexcept {
  auto* d = static_cast<Durability*>(req->data);
  ssize_t rc = req->result;
  uv_fs_req_cleanup(req);
  d->syncing = false;
  if (!d->store) {
    if (d->idle()) delete d;
    return;
  }
  if (rc < 0) {
    (void)d->store->fail_with("cannot sync the write-ahead log: " + std::string(uv_strerror(static_cast<int>(rc))));
  } else {
    d->durable = d->syncing_upto;
    ++d->syncs;
  }
  d->dispatch(d->store->sticky_);
}

// Calls, in order, every waiter the last fsync covered (all of them after a
// failure). A waiter may commit and register again, forget others, or end
// the store: each is taken off the queue before it is called.
void SqliteStore::Durability::dispatch(const Status& result) {
  SqliteStore* s = store;
  dispatching = true;
  while (store && !waiting.empty() && (!result.ok() || waiting.front().upto <= durable)) {
    auto fn = std::move(waiting.front().fn);
    waiting.pop_front();
    fn(result);
  }
  dispatching = false;
  if (!store) {
    if (idle()) delete this;
    return;
  }
  if (!waiting.empty() && !syncing && s->sticky_.ok()) start_sync();
}

int SqliteStore::Durability::on_wal_commit(void* self, sqlite3*, const char*, int pages) noexcept {
  auto* d = static_cast<Durability*>(self);
  if (pages >= kCheckpointPages && !d->checkpointing) {
    d->checkpointing = true;
    if (uv_queue_work(d->loop, &d->checkpoint_req, &Durability::checkpoint, &Durability::on_checkpointed) != 0)
      d->checkpointing = false;
  }
  return SQLITE_OK;
}

// On the threadpool: touches nothing but its own connection.
void SqliteStore::Durability::checkpoint(uv_work_t* req) noexcept {
  auto* d = static_cast<Durability*>(req->data);
  if (!d->checkpointer) {
    if (sqlite3_open_v2(d->path.c_str(), &d->checkpointer, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      sqlite3_close(d->checkpointer);
      d->checkpointer = nullptr;
      return;
    }
    // A connection learns that the database is in WAL mode at its first read.
    (void)sqlite3_exec(d->checkpointer, "PRAGMA schema_version", nullptr, nullptr, nullptr);
  }
  // Best effort: a checkpoint that cannot run now runs after a later commit.
  (void)sqlite3_wal_checkpoint_v2(d->checkpointer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

void SqliteStore::Durability::on_checkpointed(uv_work_t* req, int) noexcept {
  auto* d = static_cast<Durability*>(req->data);
  d->checkpointing = false;
  if (!d->store && d->idle()) delete d;
}

}  // namespace hearth::engine
