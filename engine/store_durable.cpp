// The store's writes, COMMITs and fsyncs, off the loop thread (store.h:
// attach, when_durable).
//
// Attached, SQLite runs in WAL mode with synchronous=NORMAL: a COMMIT
// appends the transaction's pages to the log with write() and returns (the
// commit survives the process being killed, not a power loss), and an
// fdatasync of the log makes every commit written before it durable. Neither
// runs on the loop thread. A transaction's writes are staged there (each a
// closure holding a copy of its values, SqliteStore::stage) and commit()
// queues them; one batch at a time runs on libuv's threadpool: for each
// transaction BEGIN IMMEDIATE, its writes, COMMIT, then one fdatasync for the
// whole batch, and the waiters it covers are called on the loop. Commits made
// while a batch runs wait in the queue and form the next batch: that is the
// group commit, with no thread of ours. The write lock (which another
// connection, the intake's writer of `hearth serve`, may hold for a while)
// and the disk (a write that waits for the filesystem's journal) are waited
// for on the pool.
//
// The connection is the pool's while a batch writes (`busy`). Whatever the
// loop does with it first waits for that (settle()), then runs on the loop
// the transactions still queued, so that a read sees every commit made
// before it. A read inside an open transaction runs that transaction's
// staged writes on the loop first (BEGIN IMMEDIATE there: the transaction is
// "live", and only its COMMIT goes to the pool). So reads cost the loop a
// wait, and hot paths write: a step's checkpoints, events and the delivery
// queue's state changes are writes.
//
// A failure on the pool (a constraint, a full disk, a lock not had in 5 s)
// rolls its transaction back, drops the ones after it, and becomes the
// store's sticky failure, which every waiter gets: the same rule as a
// failed write, found later.
//
// Checkpoints (copying the log into the database file, with its own fsyncs)
// would stall a commit every thousand pages; they run on the threadpool too,
// through a second connection (a PASSIVE checkpoint never blocks a writer).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include <sqlite3.h>
#include <uv.h>

#include "engine/sqlite_store.h"

namespace hearth::engine {

namespace {
constexpr int kCheckpointPages = 1000;  // SQLite's own autocheckpoint threshold

// One committed transaction: its staged writes, or (live) only its COMMIT.
struct Tx {
  int64_t number = 0;  // the store's commit count once it is made
  bool live = false;
  std::vector<std::function<Status()>> writes;
};
}  // namespace

thread_local SqliteStore::Batch* SqliteStore::on_pool_ = nullptr;

// What one trip to the threadpool runs and finds. The pool writes it while
// `busy`; the loop reads it after (settle() or the after-callback).
struct SqliteStore::Batch {
  SqliteStore* store = nullptr;
  std::vector<Tx> txs;
  std::string error;     // the first failure, worded as the store words it
  int64_t executed = 0;  // the last transaction committed
  int64_t sync_upto = 0; // commits made before the batch began, or by it: what its fsync covers
  int64_t synced = 0;    // what the fsync made durable (0: none ran)
  int sync_errno = 0;
  bool absorbed = false;
};

struct SqliteStore::Durability {
  SqliteStore* store = nullptr;  // null once the store is gone: the last callback deletes this
  uv_loop_t* loop = nullptr;
  int log_fd = -1;         // the write-ahead log, read-only: fdatasync needs no more
  std::string path;

  std::deque<Tx> queued;   // committed on the loop, not yet handed to the pool
  Batch batch;             // the one on the pool, or the last one
  uv_work_t write_req{};
  bool writing = false;    // a batch is out (until its after-callback)
  std::mutex mu;
  std::condition_variable cv;
  bool busy = false;       // under mu: the pool holds the connection
  int64_t executed = 0;    // the last commit run, on the pool or here
  int64_t durable = 0;     // commits known to be on disk
  int64_t syncs = 0;
  // For bench/: from a waiter registered with nothing to call it for, until
  // the fsync's completion reaches the loop.
  bool timing = false;
  std::chrono::steady_clock::time_point wait_began;
  struct Waiter {
    const void* owner;
    int64_t upto;
    std::function<void(const Status&)> fn;
  };
  std::deque<Waiter> waiting;

  std::atomic<int> log_pages{0};  // the log's size in pages after the last commit (the WAL hook, any thread)
  uv_work_t checkpoint_req{};
  bool checkpointing = false;
  sqlite3* checkpointer = nullptr;  // used only on the threadpool, one job at a time

  ~Durability() {
    if (checkpointer) sqlite3_close(checkpointer);
    if (log_fd >= 0) ::close(log_fd);
  }
  bool dispatching = false;  // inside dispatch(): a waiter may detach the store meanwhile
  bool idle() const { return !writing && !checkpointing && !dispatching; }

  void kick();
  void absorb();
  void dispatch(const Status& result);
  void maybe_checkpoint();
  static Status run(SqliteStore* s, Tx& tx);
  static void write_batch(uv_work_t* req) noexcept;
  static void on_written(uv_work_t* req, int status) noexcept;
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) noexcept;
  static void checkpoint(uv_work_t* req) noexcept;
  static void on_checkpointed(uv_work_t* req, int status) noexcept;
};

bool SqliteStore::staging() const { return durability_ && !on_pool_ && !live_; }

Status SqliteStore::failure() const {
  if (on_pool_) return on_pool_->error.empty() ? Status{} : Status{Error{on_pool_->error}};
  return sticky_;
}

Status SqliteStore::fail_with_message(std::string message) {
  if (Batch* b = on_pool_) {
    if (b->error.empty()) b->error = std::move(message);
    return Error{b->error};
  }
  if (sticky_.ok()) sticky_ = Error{std::move(message)};
  return sticky_;
}

void SqliteStore::counted_commit() {
  ++commits_;
  if (durability_) durability_->executed = commits_;
}

Status SqliteStore::attach(uv_loop_s* loop) {
  if (durability_) {
    if (durability_->loop == loop) return {};
    return Error{"state database " + path_ + " is attached to another loop already"};
  }
  // A test's fault-injecting VFS injects its faults into SQLite's own syncs:
  // such a store keeps them.
  if (custom_vfs_) return {};
  if (!sticky_.ok()) return sticky_;
  if (in_transaction_) return Error{"state database " + path_ + ": attached inside a transaction"};
  int fd = ::open((path_ + "-wal").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Error{"state database " + path_ + ": cannot open its write-ahead log: " + std::strerror(errno)};
  // The log starts over once a checkpoint has copied all of it; the limit
  // makes it shrink then to 64 MiB, instead of keeping its largest size on
  // disk. Not smaller: the shrinking is done by the writer that starts the
  // log over, holding the write lock, and truncating tens of megabytes
  // there (blocks freed, to be allocated again as the log grows back)
  // stalled every writer of the file for tens of milliseconds, each time
  // the log grew past the limit and started over.
  if (auto s = exec("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864"); !s.ok()) {
    ::close(fd);
    return s;
  }
  auto* d = new Durability;
  d->store = this;
  d->loop = loop;
  d->log_fd = fd;
  d->path = path_;
  d->durable = d->executed = commits_;
  d->write_req.data = d;
  d->checkpoint_req.data = d;
  durability_ = d;
  sqlite3_wal_hook(db_, &Durability::on_wal_commit, d);  // replaces the inline autocheckpoint
  return {};
}

Status SqliteStore::commit_later() {
  Durability* d = durability_;
  if (!in_transaction_) return {};
  in_transaction_ = false;
  if (!live_ && staged_.empty()) return {};  // nothing written: nothing to commit
  Tx tx{++commits_, live_, std::move(staged_)};
  staged_.clear();
  live_ = false;
  commit_time_ += std::chrono::steady_clock::now() - begun_;
  d->queued.push_back(std::move(tx));
  d->kick();
  return {};
}

void SqliteStore::settle() {
  Durability* d = durability_;
  if (!d || on_pool_) return;
  if (d->writing) {
    std::unique_lock lock(d->mu);
    d->cv.wait(lock, [d] { return !d->busy; });
    lock.unlock();
    d->absorb();
  }
  // The pool has let go; what is queued behind its batch runs here, now,
  // as the pool would run it (its writes neither counted nor staged again).
  while (!d->queued.empty() && sticky_.ok()) {
    Tx tx = std::move(d->queued.front());
    d->queued.pop_front();
    Batch here;
    on_pool_ = &here;
    bool ok = Durability::run(this, tx).ok();
    on_pool_ = nullptr;
    if (ok) d->executed = tx.number;
    else (void)fail_with_message(here.error.empty() ? "a transaction failed" : here.error);
  }
  if (!sticky_.ok()) d->queued.clear();
}

Status SqliteStore::before_read() {
  if (on_pool_ || !durability_) return {};
  settle();
  if (!sticky_.ok()) return sticky_;
  if (!in_transaction_ || live_) return {};
  // The read belongs to the open transaction: its writes so far go first.
  if (auto s = begin_write(); !s.ok()) return s;
  live_ = true;
  auto writes = std::move(staged_);
  staged_.clear();
  for (auto& w : writes)
    if (auto s = w(); !s.ok()) return s;
  return {};
}

void SqliteStore::when_durable(const void* owner, std::function<void(const Status&)> fn) {
  Durability* d = durability_;
  if (!sticky_.ok()) return fn(sticky_);
  if (!d || (d->waiting.empty() && d->durable >= commits_)) return fn({});
  if (!d->timing) {
    d->timing = true;
    d->wait_began = std::chrono::steady_clock::now();
  }
  d->waiting.push_back({owner, commits_, std::move(fn)});
  d->kick();
}

void SqliteStore::forget(const void* owner) {
  if (!durability_) return;
  auto& w = durability_->waiting;
  for (auto it = w.begin(); it != w.end();) it = it->owner == owner ? w.erase(it) : std::next(it);
}

int64_t SqliteStore::syncs() const { return durability_ ? durability_->syncs : 0; }

// From ~SqliteStore too: what is committed is run and made durable here, the
// last time the store can; a job still running on the threadpool deletes `d`
// when done.
void SqliteStore::detach() {
  Durability* d = durability_;
  if (!d) return;
  // An open transaction goes on without the pool: its writes so far run now.
  (void)before_read();
  live_ = false;
  durability_ = nullptr;
  sqlite3_wal_hook(db_, nullptr, nullptr);
  sqlite3_wal_autocheckpoint(db_, 1000);
  (void)sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  if (d->durable < commits_) (void)::fdatasync(d->log_fd);
  d->store = nullptr;
  d->waiting.clear();
  if (d->idle()) delete d;
}

// Hands the queued transactions (or, with none, an fsync that waiters need)
// to the threadpool, unless a batch is out already: its after-callback calls
// this again.
void SqliteStore::Durability::kick() {
  if (writing || !store || !store->sticky_.ok()) return;
  // A live transaction has the connection: only an fsync may go meanwhile
  // (nothing is queued then: its read ran what was).
  if (store->live_ && !queued.empty()) return;
  bool sync_wanted = !waiting.empty() && durable < executed;
  if (queued.empty() && !sync_wanted) return;
  batch = Batch{};
  batch.store = store;
  batch.txs.reserve(queued.size());
  for (auto& tx : queued) batch.txs.push_back(std::move(tx));
  queued.clear();
  batch.sync_upto = executed;
  {
    std::lock_guard lock(mu);
    busy = true;
  }
  writing = true;
  if (int rc = uv_queue_work(loop, &write_req, &Durability::write_batch, &Durability::on_written); rc != 0) {
    writing = false;
    {
      std::lock_guard lock(mu);
      busy = false;
    }
    (void)store->fail_with("cannot queue the log's writes: " + std::string(uv_strerror(rc)));
    dispatch(store->sticky_);
  }
}

// One transaction, on whichever thread holds the connection.
Status SqliteStore::Durability::run(SqliteStore* s, Tx& tx) {
  Status st;
  if (tx.live) {
    st = s->exec("COMMIT");
  } else {
    st = s->begin_write();
    for (auto& w : tx.writes) {
      if (!st.ok()) break;
      st = w();
    }
    if (st.ok()) st = s->exec("COMMIT");
  }
  if (!st.ok()) sqlite3_exec(s->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  s->end_write();  // the turn taken on the loop, for a live one
  return st;
}

// On the threadpool: the batch's transactions, then one fdatasync of the log.
void SqliteStore::Durability::write_batch(uv_work_t* req) noexcept {
  auto* d = static_cast<Durability*>(req->data);
  Batch& b = d->batch;
  on_pool_ = &b;
  for (auto& tx : b.txs) {
    if (!run(b.store, tx).ok()) break;
    b.executed = tx.number;
  }
  on_pool_ = nullptr;
  if (b.executed > b.sync_upto) b.sync_upto = b.executed;
  {
    std::lock_guard lock(d->mu);
    d->busy = false;
  }
  d->cv.notify_all();
  // The log's descriptor is this object's: the store may be gone by now.
  if (b.sync_upto > 0) {
    if (::fdatasync(d->log_fd) == 0) b.synced = b.sync_upto;
    else b.sync_errno = errno;
  }
}

// On the loop, once the pool has let go of the connection (settle(), or the
// after-callback): the batch's failure becomes the store's.
void SqliteStore::Durability::absorb() {
  if (batch.absorbed) return;
  batch.absorbed = true;
  if (batch.executed > executed) executed = batch.executed;
  if (!batch.error.empty() && store) {
    (void)store->fail_with_message(batch.error);
    queued.clear();
  }
  batch.txs.clear();  // their copies are freed on the loop
}

void SqliteStore::Durability::on_written(uv_work_t* req, int) noexcept {
  auto* d = static_cast<Durability*>(req->data);
  d->writing = false;
  if (!d->store) {
    if (d->idle()) delete d;
    return;
  }
  if (d->timing) {
    d->timing = false;
    d->store->durable_wait_ += std::chrono::steady_clock::now() - d->wait_began;
  }
  d->absorb();
  if (d->batch.sync_errno != 0)
    (void)d->store->fail_with("cannot sync the write-ahead log: " + std::string(std::strerror(d->batch.sync_errno)));
  else if (d->batch.synced > d->durable) {
    d->durable = d->batch.synced;
    ++d->syncs;
  }
  d->maybe_checkpoint();
  d->dispatch(d->store->sticky_);
}

// Calls, in order, every waiter the last fsync covered (all of them after a
// failure). A waiter may commit and register again, forget others, or end
// the store: each is taken off the queue before it is called.
void SqliteStore::Durability::dispatch(const Status& result) {
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
  kick();
}

int SqliteStore::Durability::on_wal_commit(void* self, sqlite3*, const char*, int pages) noexcept {
  static_cast<Durability*>(self)->log_pages.store(pages, std::memory_order_relaxed);
  return SQLITE_OK;
}

void SqliteStore::Durability::maybe_checkpoint() {
  if (checkpointing || log_pages.load(std::memory_order_relaxed) < kCheckpointPages) return;
  log_pages.store(0, std::memory_order_relaxed);
  checkpointing = true;
  if (uv_queue_work(loop, &checkpoint_req, &Durability::checkpoint, &Durability::on_checkpointed) != 0)
    checkpointing = false;
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
