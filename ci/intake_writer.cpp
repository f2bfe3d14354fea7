// The intake's group commit on its own thread (intake_writer.h).
#include "ci/intake_writer.h"

namespace hearth::ci {

Result<IntakeWriter*> IntakeWriter::start(uv_loop_t* loop, const std::string& path, Written on_written) {
  // Not attached to a loop: the store commits with synchronous=FULL, so a
  // commit returns once the log is fsynced (and only then do other
  // connections see it).
  auto store = engine::Store::open(path);
  if (!store) return Error{"the intake's connection: " + store.message()};
  auto queue = DeliveryQueue::open(**store);
  if (!queue) return Error{"the intake's connection: " + queue.message()};
  auto* w = new IntakeWriter(loop, std::move(on_written));
  w->store_ = std::move(*store);
  w->queue_ = std::move(*queue);
  if (int rc = uv_async_init(loop, &w->async_, &IntakeWriter::on_async); rc < 0) {
    delete w;
    return Error{std::string("cannot start the intake's writer: ") + uv_strerror(rc)};
  }
  w->async_.data = w;
  w->thread_ = std::thread([w] { w->run(); });
  return w;
}

void IntakeWriter::submit(uint64_t ticket, std::vector<DeliveryRecord> records) {
  ++in_flight_;
  {
    std::lock_guard lock(mu_);
    queued_.push_back(Group{ticket, std::move(records)});
  }
  wake_.notify_one();
}

void IntakeWriter::run() noexcept {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping, nothing left
    std::vector<Group> groups(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    lock.unlock();
    Status s = write(groups);
    lock.lock();
    for (const auto& g : groups) outcomes_.push_back(Outcome{g.ticket, s});
    uv_async_send(&async_);
  }
}

// Every group taken at once goes into one transaction: one fsync for all.
Status IntakeWriter::write(std::vector<Group>& groups) {
  if (!failed_.ok()) return failed_;
  Status s = queue_->begin();
  for (size_t g = 0; s.ok() && g < groups.size(); ++g)
    for (size_t i = 0; s.ok() && i < groups[g].records.size(); ++i) s = queue_->add(groups[g].records[i]);
  if (!s.ok()) {
    queue_->rollback();
    failed_ = s;
    return s;
  }
  Status committed;
  queue_->commit([&committed](const Status& c) { committed = c; });  // at once: the store has no loop
  if (!committed.ok()) failed_ = committed;
  else commits_.fetch_add(1, std::memory_order_relaxed);
  return committed;
}

void IntakeWriter::on_async(uv_async_t* h) noexcept {
  auto* self = static_cast<IntakeWriter*>(h->data);
  std::vector<Outcome> done;
  {
    std::lock_guard lock(self->mu_);
    done.swap(self->outcomes_);
  }
  for (auto& o : done) {
    --self->in_flight_;
    self->on_written_(o.ticket, o.stored);
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
  on_closed_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) noexcept {
    auto* self = static_cast<IntakeWriter*>(h->data);
    auto done = std::move(self->on_closed_);
    delete self;
    if (done) done();
  });
}

}  // namespace hearth::ci
