// The PostgreSQL store's commits off the loop thread (pg_store.h, store.h:
// attach, when_durable).
//
// A commit is a round trip to the server and the server's WAL flush: about
// a quarter of a millisecond over a Unix socket, several on a loaded disk
// or a network. Attached to a loop, commit() sends a transaction that
// writes (BEGIN, the held-back writes, the commit mark and COMMIT, one
// pipeline) and returns; a uv_poll on the connection's socket reads the
// answers as they come, without blocking, and once the last is in, the
// commit ends there and the waiters of when_durable() are called in the
// order they came, with the commit's failure if it failed (sticky, as every
// failure of the store). The loop wakes for the answer as a blocking libpq
// call would have woken: no thread in the way of the common case.
//
// A connection lost under a commit (no answer, or the request never sent)
// is the slow path: what to do next (reconnecting with backoff, reading the
// commit mark, sending the transaction again: pg_store_reconnect.cpp) goes
// to libuv's threadpool, so the loop does not wait out a database restart.
//
// One connection, one owner at a time: while a commit is in flight, every
// other call of the store on the loop waits for it first (settle(): the
// answers read blocking, or the pool's work waited for). So the loop goes
// on with what does not need the store (processes, HTTP, timers) while the
// server works, and a call that does need the store costs no more than it
// did when commit() waited itself. Commits do not overlap: the next one is
// sent once the last is answered, so a failure can never be followed by a
// later transaction the server saved. The poll handle lives for one commit
// and the pool's work is a request: when the loop ends, nothing of the
// store's is left on it to close.
#include <uv.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "engine/pg_sql.h"

namespace hearth::engine {

struct PgStore::Flight {
  PgStore* store = nullptr;  // null once detached: the last callback deletes this
  uv_loop_t* loop = nullptr;
  int callbacks = 0;         // poll handles and pool requests whose last callback has not run

  // The commit in flight, on the loop's side.
  bool busy = false;     // sent, not ended
  int64_t handed = 0;    // commits sent
  int64_t answered = 0;  // of which ended
  Piping piping;         // what was sent
  Answered answers;      // sent_on, then what the answers came to
  std::deque<pg::ResultPtr> got;  // read so far, the nulls between them included
  bool complete = false;          // the last answer is in, or the connection is gone
  uv_poll_t* poll = nullptr;

  // The slow path, on the pool.
  std::mutex mu;
  std::condition_variable cv;
  bool job = false;  // under mu

  struct Waiter {
    const void* owner;
    int64_t upto;  // answered must reach this
    std::function<void(const Status&)> fn;
  };
  std::deque<Waiter> waiting;

  // A callback's end: the flight outlives a detach until its last one. It
  // is counted until dispatch() returns, so that a waiter detaching the
  // store (or destroying it) leaves it to be deleted here.
  static void ended(Flight* f) {
    if (f->store) f->store->dispatch();
    if (--f->callbacks == 0 && !f->store) delete f;
  }
  static void on_readable(uv_poll_t* h, int, int) noexcept {
    auto* f = static_cast<Flight*>(h->data);
    if (f->store && f->poll == h) f->store->read_answers(false);
  }
  static void work(uv_work_t* req) noexcept {
    auto* f = static_cast<Flight*>(req->data);
    PgStore* s = f->store;
    auto r = s->flush(nullptr, true, "cannot commit", &f->answers);
    s->end_commit(r ? Status{} : r.status());
    std::lock_guard lock(f->mu);
    f->job = false;
    f->cv.notify_all();
  }
  static void worked(uv_work_t* req, int) noexcept {
    auto* f = static_cast<Flight*>(req->data);
    delete req;
    ended(f);
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

void PgStore::end_commit(Status s, bool sent) {
  if (!s.ok()) abandon();
  else if (sent) ++commits_;
  in_transaction_ = server_open_ = writes_ = false;
  journal_.clear();
  pending_.clear();
  fences_.clear();
  if (s.ok()) commit_time_ += std::chrono::steady_clock::now() - begun_;
}

Status PgStore::finish_commit() {
  Status s;
  bool sent = server_open_ || !pending_.empty();
  if (sent)
    if (auto r = flush(nullptr, true, "cannot commit"); !r) s = r.status();
  end_commit(s, sent);
  return s;
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
  Flight& f = *flight_;
  f.piping = Piping{};
  f.got.clear();
  f.complete = false;
  f.answers.sent_on = session_;
  f.busy = true;
  ++f.handed;
  if (auto early = pipe_send(nullptr, true, f.piping)) {
    f.answers.piped = std::move(*early);
    f.complete = true;
    answered();
    return f.busy ? Status{} : sticky_;  // refused at once, or on the pool
  }
  f.poll = new uv_poll_t;
  if (uv_poll_init(f.loop, f.poll, PQsocket(conn_)) < 0) {
    delete f.poll;
    f.poll = nullptr;
    read_answers(true);  // no poll: the answers read here, then
    return f.busy ? Status{} : sticky_;
  }
  f.poll->data = &f;
  ++f.callbacks;
  // Answers libpq took in while it sent a pipeline larger than the socket's
  // buffers wait in its buffer; the last answer can only come after the
  // last byte was sent, so the socket becomes readable still.
  uv_poll_start(f.poll, UV_READABLE, &Flight::on_readable);
  return {};
}

// What has come so far, without waiting (or, `block`, all of it); once the
// last answer is in, the commit ends.
void PgStore::read_answers(bool block) {
  Flight& f = *flight_;
  if (!block && !PQconsumeInput(conn_)) f.complete = true;  // the connection is gone
  while (!f.complete && (block || !PQisBusy(conn_))) {
    pg::ResultPtr r(PQgetResult(conn_), PQclear);
    f.complete = r ? PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC : lost();
    f.got.push_back(std::move(r));
  }
  if (!f.complete) return;
  f.answers.piped = pipe_answer(f.piping, [&f] {
    if (f.got.empty()) return pg::ResultPtr(nullptr, PQclear);
    pg::ResultPtr r = std::move(f.got.front());
    f.got.pop_front();
    return r;
  });
  f.got.clear();
  answered();
}

// The answers are read: the commit ends here (saved, or refused by the
// server), or, with the connection lost, its fate is settled on the pool.
void PgStore::answered() {
  Flight& f = *flight_;
  if (f.poll) {
    uv_poll_stop(f.poll);
    uv_close(reinterpret_cast<uv_handle_t*>(f.poll), [](uv_handle_t* h) noexcept {
      auto* fl = static_cast<Flight*>(h->data);
      delete reinterpret_cast<uv_poll_t*>(h);
      Flight::ended(fl);
    });
    f.poll = nullptr;
  }
  if (f.answers.piped.how == Piped::lost) {
    auto* req = new uv_work_t;
    req->data = &f;
    {
      std::lock_guard lock(f.mu);
      f.job = true;
    }
    if (uv_queue_work(f.loop, req, &Flight::work, &Flight::worked) == 0) {
      ++f.callbacks;
      return;
    }
    delete req;
    std::lock_guard lock(f.mu);
    f.job = false;  // settled here, then
  }
  auto r = flush(nullptr, true, "cannot commit", &f.answers);
  end_commit(r ? Status{} : r.status());
  f.busy = false;
  ++f.answered;
}

void PgStore::settle() {
  if (!flight_ || !flight_->busy) return;
  Flight& f = *flight_;
  if (!f.complete) read_answers(true);
  if (!f.busy) return;  // ended on the loop
  std::unique_lock lock(f.mu);
  f.cv.wait(lock, [&f] { return !f.job; });
  f.busy = false;
  ++f.answered;
}

void PgStore::when_durable(const void* owner, std::function<void(const Status&)> fn) {
  if (!flight_ || (!flight_->busy && flight_->waiting.empty())) return fn(sticky_);
  flight_->waiting.push_back(Flight::Waiter{owner, flight_->handed, std::move(fn)});
}

void PgStore::dispatch() {
  Flight* f = flight_;
  if (!f) return;
  if (f->busy && f->complete) {
    std::lock_guard lock(f->mu);
    if (!f->job) f->busy = false, ++f->answered;  // the pool is done with it
  }
  // Each waiter may use the store (a new commit), forget others, or detach
  // it: one at a time, looked at again after each. While a commit is in
  // flight sticky_ was clear when it was sent (else it would not have
  // been): the waiters of earlier commits get success.
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
  if (f->callbacks == 0) delete f;  // else the last callback does
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
