// The group commit of `hearth serve`'s intake, on a thread of its own.
//
// Checked deliveries are written to the delivery queue through a second
// connection to the state database, owned by one thread that does nothing
// else: it takes every group queued since its last commit and, in one
// transaction, decides each delivery (its id already queued: known; its body
// already accepted under another id: a replay; else inserted), commits it,
// fdatasyncs the write-ahead log, and hands the verdicts back to the loop
// with a uv_async. The duplicate and replay look-ups, and the body's SHA-256
// they need, are the writer's so that the loop thread does neither: it reads,
// checks the signature and the JSON, and answers. So a 202 waits for its
// own fsync only: never for a run's checkpoint, a sandbox's start or a
// scheduling pass on the loop, and the loop never waits for the disk. Groups
// queued while one is written are merged into the next transaction (the
// group grows with the load, as the fsync's cost is shared).
//
// The life of a group: submit(ticket, records) on the loop ─► decided,
// written and made durable on the writer's thread ─► `on_written(ticket,
// status, verdicts)` on the loop, exactly once per submitted ticket, in
// submission order, unless close() was called first. Deliveries are decided
// in submission order, so a second delivery with the id (or body) of one in
// the same or an earlier group is known (or a replay) however close they
// came. Every verdict is reported after the fdatasync, which also covers what
// a look-up read of the run store's own commits (the same log): an answer
// built from it promises nothing that a power loss could undo. A failed
// write is sticky: every later group gets the same failure.
//
// SQLite allows one writer at a time: the run store's transactions (on
// libuv's threadpool) and this thread's take turns at the lock, first come
// first served (engine/write_turns.h); both are short, since neither holds
// the lock across an fsync (this thread syncs the log after its commit, as
// the run store does after its batch).
// Other connections may read a group's rows after its commit and before its
// fsync: the server treats a delivery as stored only once it is reported.
//
// On a shared store (PostgreSQL) the writer's connection is a second session
// of that database: a commit there is durable when the server answers it, so
// no log is synced and no turns are taken. It also runs a worker's claims and
// renewals (call()), so that the loop thread never waits for the database's
// answers to the queue's statements, nor for its reconnects in an outage: the
// listener answers while groups and claims wait here for the database.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ci/delivery_queue.h"
#include "engine/store.h"
#include "engine/write_turns.h"
#include "util/status.h"

namespace hearth::ci {

/// What the writer decided for one delivery of a group.
struct Verdict {
  enum class Kind { stored, known, replay };
  Kind kind = Kind::stored;
  std::optional<DeliveryRecord> known;  // Kind::known: the delivery with that id, without its payload
  std::string replay_of;                // Kind::replay: the delivery that has the same body
};

class IntakeWriter {
 public:
  /// `verdicts` has one entry per record submitted under `ticket`, in order;
  /// empty when `stored` failed.
  using Written = std::function<void(uint64_t ticket, const Status& stored, std::vector<Verdict>& verdicts)>;

  /// Opens its own connection to the database at `location` (a SQLite file,
  /// or a postgres:// URL, password and all; the queue's tables must exist:
  /// DeliveryQueue::open ran on the run store first) and starts its thread.
  /// `on_written` runs on `loop`'s thread. The writer lives on the heap,
  /// never moves, and deletes itself from close().
  static Result<IntakeWriter*> start(uv_loop_t* loop, const std::string& location, Written on_written);

  /// Work for the writer's thread besides groups: run there, after whatever
  /// was queued before it, on the writer's queue and store (a failure there
  /// is the store's, and sticky for the groups as well); what it returns is
  /// then called on the loop thread, in order with the groups' reports,
  /// unless close() came first. On the loop thread.
  using Job = std::function<std::function<void()>(DeliveryQueue& queue, engine::Store& store)>;
  void call(Job job);
  /// Jobs called and not yet answered.
  size_t jobs_in_flight() const { return jobs_in_flight_; }

  /// Queues `records` to be decided and written as one group. A record's
  /// `payload` is the delivery's JSON text; it is stored only when the record
  /// plans runs. An empty `digest` is computed here, as sha256_hex(payload):
  /// leave it empty only when the payload is the body as received. On the
  /// loop thread.
  void submit(uint64_t ticket, std::vector<DeliveryRecord> records);  // ticket > 0
  /// Groups submitted and not yet reported.
  size_t in_flight() const { return in_flight_; }
  /// Transactions committed so far (each holds one or more groups).
  int64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  /// Time spent on the database's write lock, summed over the commits and
  /// the longest once: `waited` for it (the engine's transactions held
  /// it), `held` it (inserting and committing, the fsync excluded: what an
  /// engine commit on the loop may wait for).
  struct LockTime {
    std::atomic<int64_t> total_us{0}, max_us{0};  // written by the writer's thread only
  };
  const LockTime& waited() const { return waited_; }
  const LockTime& held() const { return held_; }
  /// Writes (and runs) what is queued, stops the thread, then deletes the
  /// writer and calls `done` on the loop. Reports of groups and answers of
  /// jobs not yet delivered are dropped: call it once in_flight() and
  /// jobs_in_flight() are 0. Call once.
  void close(std::function<void()> done);

 private:
  // A group of deliveries, or (with `job`) work called.
  struct Group {
    uint64_t ticket;
    std::vector<DeliveryRecord> records;
    Job job;
  };
  struct Outcome {
    uint64_t ticket;
    Status stored;
    std::vector<Verdict> verdicts;
    std::function<void()> then;  // a job's follow-up on the loop
  };
  /// Writes the groups of `todo` from `from` up to the next job (or the
  /// end) in one transaction, and adds their outcomes; returns where it
  /// stopped.
  size_t write_run(std::vector<Group>& todo, size_t from, std::vector<Outcome>& out);
  IntakeWriter(uv_loop_t* loop, Written on_written) : loop_(loop), on_written_(std::move(on_written)) {}
  ~IntakeWriter() = default;
  void run() noexcept;  // the writer's thread
  Status write(std::vector<Group>& groups, std::vector<std::vector<Verdict>>& verdicts);
  Result<Verdict> decide(DeliveryRecord& record);
  void checkpoint();
  /// Payload bytes written since the last checkpoint; about a thousand
  /// pages, SQLite's own threshold, start one.
  static constexpr size_t kCheckpointBytes = 4 * 1024 * 1024;
  static void on_async(uv_async_t* h) noexcept;

  uv_loop_t* loop_;
  Written on_written_;
  uv_async_t async_{};
  size_t in_flight_ = 0;       // loop thread only
  size_t jobs_in_flight_ = 0;  // loop thread only
  std::function<void()> on_closed_;

  // Used by the writer's thread only, once started.
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<DeliveryQueue> queue_;
  Status failed_;  // sticky
  int log_fd_ = -1;  // SQLite's write-ahead log, read-only: fdatasync needs no more; -1 on a shared store
  std::shared_ptr<engine::WriteTurns> turns_;  // the file's writers of this process (write_turns.h)
  size_t logged_bytes_ = 0;
  std::atomic<int64_t> commits_{0};
  LockTime waited_, held_;
  static void note(LockTime& t, std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to);

  std::mutex mu_;  // guards what follows
  std::condition_variable wake_;
  std::deque<Group> queued_;
  std::vector<Outcome> outcomes_;
  bool stopping_ = false;

  std::thread thread_;
};

}  // namespace hearth::ci
