// The intake's group commit on its own thread (intake_writer.h).
#include "ci/intake_writer.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ci/webhook.h"
#include "engine/store_tables.h"

namespace hearth::ci {

Result<IntakeWriter*> IntakeWriter::start(uv_loop_t* loop, const std::string& location, Written on_written) {
  auto store = engine::Store::open(location);
  if (!store) return Error{"the intake's connection: " + store.message()};
  auto queue = DeliveryQueue::open(**store);
  if (!queue) return Error{"the intake's connection: " + queue.message()};
  int log_fd = -1;
  if (!(*store)->shared()) {
    // The commit only writes the log (synchronous=NORMAL) and the writer
    // fsyncs it after: with FULL, SQLite would fsync while holding the
    // database's write lock, and the engine's commits on the loop would wait
    // in the busy handler for this thread's fsync.
    if (auto s = (*store)->tables().execute("PRAGMA synchronous=NORMAL", {}, "cannot set the intake's sync mode");
        !s.ok())
      return s.error();
    // SQLite's automatic checkpoint would copy the log into the database
    // inside a commit, before the group is synced and answered; the writer
    // runs it itself once the group is answered (run()).
    if (auto r = (*store)->tables().query("PRAGMA wal_autocheckpoint=0", {}, "cannot set the intake's checkpoints");
        !r)
      return r.error();
    log_fd = ::open((location + "-wal").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (log_fd < 0)
      return Error{"the intake's connection: cannot open " + location + "-wal: " + std::strerror(errno)};
  }
  auto* w = new IntakeWriter(loop, std::move(on_written));
  w->store_ = std::move(*store);
  w->queue_ = std::move(*queue);
  w->log_fd_ = log_fd;
  if (log_fd >= 0) w->turns_ = engine::WriteTurns::of(location);
  if (int rc = uv_async_init(loop, &w->async_, &IntakeWriter::on_async); rc < 0) {
    if (log_fd >= 0) ::close(log_fd);
    delete w;
    return Error{std::string("cannot start the intake's writer: ") + uv_strerror(rc)};
  }
  w->async_.data = w;
  w->thread_ = std::thread([w] { w->run(); });
  pthread_setname_np(w->thread_.native_handle(), "hearth-intake");  // its CPU apart in top, perf, /proc
  return w;
}

void IntakeWriter::submit(uint64_t ticket, std::vector<DeliveryRecord> records) {
  ++in_flight_;
  {
    std::lock_guard lock(mu_);
    queued_.push_back(Group{ticket, std::move(records), nullptr});
  }
  wake_.notify_one();
}

void IntakeWriter::call(Job job) {
  ++jobs_in_flight_;
  {
    std::lock_guard lock(mu_);
    queued_.push_back(Group{0, {}, std::move(job)});
  }
  wake_.notify_one();
}

void IntakeWriter::run() noexcept {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping, nothing left
    std::vector<Group> todo(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    lock.unlock();
    // The groups between two jobs go in one transaction; each job after
    // what was queued before it. Each outcome is handed over as it comes.
    for (size_t i = 0; i < todo.size();) {
      std::vector<Outcome> out;
      if (todo[i].job) {
        out.push_back(Outcome{0, {}, {}, todo[i].job(*queue_, *store_)});
        ++i;
      } else {
        i = write_run(todo, i, out);
      }
      lock.lock();
      for (auto& o : out) outcomes_.push_back(std::move(o));
      uv_async_send(&async_);
      lock.unlock();
    }
    if (logged_bytes_ >= kCheckpointBytes && failed_.ok() && log_fd_ >= 0) checkpoint();
    lock.lock();
  }
}

size_t IntakeWriter::write_run(std::vector<Group>& todo, size_t from, std::vector<Outcome>& out) {
  size_t end = from;
  while (end < todo.size() && !todo[end].job) ++end;
  std::vector<Group> groups(std::make_move_iterator(todo.begin() + static_cast<std::ptrdiff_t>(from)),
                            std::make_move_iterator(todo.begin() + static_cast<std::ptrdiff_t>(end)));
  std::vector<std::vector<Verdict>> verdicts;
  Status s = write(groups, verdicts);
  for (size_t g = 0; g < groups.size(); ++g)
    out.push_back(Outcome{groups[g].ticket, s, s.ok() ? std::move(verdicts[g]) : std::vector<Verdict>{}, nullptr});
  return end;
}

// Copies the log into the database file so that it starts over (a PASSIVE
// checkpoint: it never blocks a writer, and the run store's own checkpoints
// do the same from the loop's side). It holds this process's write turn
// (write_turns.h) meanwhile: the log starts over only once a checkpoint has
// copied all of it, and with the run store's commits landing during the
// copy it never had, so under load the log grew by hundreds of megabytes.
// Best effort: what it cannot copy now, a later one does.
void IntakeWriter::checkpoint() {
  logged_bytes_ = 0;
  bool mine = turns_ && turns_->take(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  (void)store_->tables().query("PRAGMA wal_checkpoint(PASSIVE)", {}, "cannot checkpoint the log");
  if (mine) turns_->give();
}

// One delivery, inside the writer's transaction: known by its id, a replay
// of a body accepted under another id, or inserted. Looked up on this
// connection, which sees its own uncommitted rows: a repeat within one
// transaction is caught like any other.
Result<Verdict> IntakeWriter::decide(DeliveryRecord& d) {
  if (d.digest.empty()) d.digest = sha256_hex(d.payload);
  Result<DeliveryQueue::Known> known = Error{"the delivery queue did not answer"};
  queue_->look_up(d.id, d.digest, [&known](Result<DeliveryQueue::Known> k) { known = std::move(k); });
  if (!known) return known.error();
  Verdict v;
  if (known->delivery) {
    v.kind = Verdict::Kind::known;
    v.known = std::move(known->delivery);
    return v;
  }
  if (known->same_body) {
    v.kind = Verdict::Kind::replay;
    v.replay_of = std::move(*known->same_body);
    return v;
  }
  if (d.run_ids.empty()) d.payload.clear();  // nothing will read it
  if (auto s = queue_->add(d); !s.ok()) return s.error();
  logged_bytes_ += d.payload.size();
  return v;
}

// Every group taken at once goes into one transaction: one fsync for all.
Status IntakeWriter::write(std::vector<Group>& groups, std::vector<std::vector<Verdict>>& verdicts) {
  if (!failed_.ok()) return failed_;
  auto asked = std::chrono::steady_clock::now();
  Status s = queue_->begin();
  auto began = std::chrono::steady_clock::now();
  note(waited_, asked, began);
  verdicts.resize(groups.size());
  for (size_t g = 0; s.ok() && g < groups.size(); ++g)
    for (size_t i = 0; s.ok() && i < groups[g].records.size(); ++i) {
      auto v = decide(groups[g].records[i]);
      if (!v) s = v.status();
      else verdicts[g].push_back(std::move(*v));
    }
  if (!s.ok()) {
    queue_->rollback();
    failed_ = s;
    return s;
  }
  Status committed;
  queue_->commit([&committed](const Status& c) { committed = c; });  // at once: the store has no loop
  note(held_, began, std::chrono::steady_clock::now());
  // Durable once the log is on disk (on a shared store, once the commit is
  // answered); other connections may see the rows before that, which is why
  // the server keeps their ids in flight until this group is reported.
  if (committed.ok() && log_fd_ >= 0 && ::fdatasync(log_fd_) != 0)
    committed = Error{"state database: cannot sync the write-ahead log: " + std::string(std::strerror(errno))};
  if (!committed.ok()) failed_ = committed;
  else commits_.fetch_add(1, std::memory_order_relaxed);
  return committed;
}

void IntakeWriter::note(LockTime& t, std::chrono::steady_clock::time_point from,
                        std::chrono::steady_clock::time_point to) {
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  t.total_us.fetch_add(us, std::memory_order_relaxed);
  if (us > t.max_us.load(std::memory_order_relaxed)) t.max_us.store(us, std::memory_order_relaxed);
}

void IntakeWriter::on_async(uv_async_t* h) noexcept {
  auto* self = static_cast<IntakeWriter*>(h->data);
  std::vector<Outcome> done;
  {
    std::lock_guard lock(self->mu_);
    done.swap(self->outcomes_);
  }
  for (auto& o : done) {
    if (o.ticket == 0) {  // a job's (tickets start at 1)
      --self->jobs_in_flight_;
      if (o.then) o.then();
      continue;
    }
    --self->in_flight_;
    self->on_written_(o.ticket, o.stored, o.verdicts);
  }
}

void IntakeWriter::close(std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  queue_.reset();
  store_.reset();
  if (log_fd_ >= 0) ::close(log_fd_);
  log_fd_ = -1;
  on_closed_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) noexcept {
    auto* self = static_cast<IntakeWriter*>(h->data);
    auto done = std::move(self->on_closed_);
    delete self;
    if (done) done();
  });
}

}  // namespace hearth::ci
