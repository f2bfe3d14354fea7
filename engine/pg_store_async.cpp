// The PostgreSQL store's commits off the loop thread (pg_store.h, store.h:
// attach, when_durable).
//
// A commit is a round trip to the server and the server's WAL flush: about
// a quarter of a millisecond over a Unix socket, several on a loaded disk
// or a network. Attached to a loop, commit() hands a transaction that
// writes to libuv's threadpool and returns: there BEGIN, the held-back
// writes, the commit mark and COMMIT go in one pipeline, the answers are
// read, and a lost connection is recovered from as on the synchronous path
// (pg_store_reconnect.cpp). Back on the loop, the waiters of when_durable()
// are called in the order they came, with the commit's failure if it
// failed (which is sticky, as every failure of the store). A request, not a
// handle: the loop runs until the commit is answered, and nothing is left
// to close when it ends.
//
// One connection, one owner at a time: while a commit is in flight the
// connection and the transaction's state are the pool thread's, and every
// other call of the store on the loop waits for it first (settle()). So the
// loop goes on with what does not need the store (processes, HTTP, timers)
// while the server works, and a call that does need the store costs no more
// than it did when commit() waited itself. Commits do not overlap: the next
// one is sent once the last is answered, so a failure can never be followed
// by a later transaction the server saved.
#include <uv.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "engine/pg_sql.h"

namespace hearth::engine {

struct PgStore::Flight {
  PgStore* store = nullptr;  // null once detached: the last request's callback deletes this
  uv_loop_t* loop = nullptr;

  std::mutex mu;
  std::condition_variable cv;
  bool job = false;  // under mu: a commit on the pool not yet done

  // The loop's side.
  bool busy = false;     // a commit handed over and not settled
  int requests = 0;      // requests whose callback has not run
  int64_t handed = 0;    // commits handed over
  int64_t answered = 0;  // of which settled
  struct Waiter {
    const void* owner;
    int64_t upto;  // answered must reach this
    std::function<void(const Status&)> fn;
  };
  std::deque<Waiter> waiting;

  struct Request {
    uv_work_t req{};
    Flight* flight;
  };
  static void work(uv_work_t* req) noexcept {
    auto* f = static_cast<Request*>(req->data)->flight;
    (void)f->store->finish_commit();  // its failure is sticky_, read on the loop
    std::lock_guard lock(f->mu);
    f->job = false;
    f->cv.notify_all();
  }
  static void done(uv_work_t* req, int) noexcept {
    auto* r = static_cast<Request*>(req->data);
    Flight* f = r->flight;
    delete r;
    // Counted until dispatch() returns, so that a waiter detaching the
    // store leaves this flight to be deleted here.
    if (f->store) f->store->dispatch();
    if (--f->requests == 0 && !f->store) delete f;
  }
};

Status PgStore::attach(uv_loop_s* loop) {
  if (flight_) {
    if (flight_->loop == loop) return {};
    return Error{"state database " + shown_ + " is attached to another loop already"};
  }
  flight_ = new Flight;
  flight_->store = this;
  flight_->loop = loop;
  return {};
}

void PgStore::settle() {
  if (!flight_ || !flight_->busy) return;
  std::unique_lock lock(flight_->mu);
  flight_->cv.wait(lock, [this] { return !flight_->job; });
  flight_->busy = false;
  ++flight_->answered;
}

Status PgStore::finish_commit() {
  Status s;
  if (server_open_ || !pending_.empty()) {
    if (auto r = flush(nullptr, true, "cannot commit"); !r) s = r.status();
    if (s.ok()) ++commits_;
    else abandon();
  }
  in_transaction_ = server_open_ = writes_ = false;
  journal_.clear();
  pending_.clear();
  fences_.clear();
  if (!s.ok()) return s;
  commit_time_ += std::chrono::steady_clock::now() - begun_;
  return {};
}

Status PgStore::commit() {
  settle();
  if (!in_transaction_) return sticky_;
  if (!sticky_.ok()) {
    rollback();
    return sticky_;
  }
  // A transaction that only read has nothing to make durable: its COMMIT
  // goes at once, as without a loop.
  if (!flight_ || !writes_ || (!server_open_ && pending_.empty())) return finish_commit();
  auto* r = new Flight::Request{{}, flight_};
  r->req.data = r;
  {
    std::lock_guard lock(flight_->mu);
    flight_->job = true;
  }
  if (int rc = uv_queue_work(flight_->loop, &r->req, &Flight::work, &Flight::done); rc < 0) {
    delete r;
    {
      std::lock_guard lock(flight_->mu);
      flight_->job = false;
    }
    return finish_commit();  // here, then
  }
  ++flight_->requests;
  flight_->busy = true;
  ++flight_->handed;
  return {};
}

void PgStore::when_durable(const void* owner, std::function<void(const Status&)> fn) {
  if (!flight_ || (!flight_->busy && flight_->waiting.empty())) return fn(sticky_);
  flight_->waiting.push_back(Flight::Waiter{owner, flight_->handed, std::move(fn)});
}

void PgStore::dispatch() {
  Flight* f = flight_;
  if (!f) return;
  bool finished;
  {
    std::lock_guard lock(f->mu);
    finished = !f->job;
  }
  if (finished) settle();
  // Each waiter may use the store (a new commit), forget others, or detach
  // it: one at a time, looked at again after each. While a commit is in
  // flight its thread owns sticky_, which was clear when it was handed over:
  // the waiters of earlier commits get success.
  while (f->store && !f->waiting.empty()) {
    Status result = f->busy ? Status{} : sticky_;
    if (f->waiting.front().upto > f->answered && result.ok()) break;
    auto fn = std::move(f->waiting.front().fn);
    f->waiting.pop_front();
    fn(result);
  }
}

void PgStore::forget(const void* owner) {
  if (!flight_) return;
  std::erase_if(flight_->waiting, [owner](const Flight::Waiter& w) { return w.owner == owner; });
}

void PgStore::detach() {
  if (!flight_) return;
  settle();
  Flight* f = std::exchange(flight_, nullptr);
  f->store = nullptr;
  f->waiting.clear();
  if (f->requests == 0) delete f;  // else the last request's callback does
}

Status PgStore::health() const {
  settle();
  return sticky_;
}

int64_t PgStore::reconnects() const {
  settle();
  return reconnects_;
}

int64_t PgStore::commits() const {
  settle();
  return commits_;
}

std::chrono::nanoseconds PgStore::commit_time() const {
  settle();
  return commit_time_;
}

}  // namespace hearth::engine
