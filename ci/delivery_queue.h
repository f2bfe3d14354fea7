// The durable webhook queue of `hearth serve`: one row per delivery, in
// tables of its own in the run store's database, written in the store's
// transactions through the store's StoreTables (the engine knows nothing of
// it). The life of a delivery in the queue:
//   accepted  committed (add, commit) before the 202 is sent;
//   started   every run it plans has been started or found recorded;
//   done      every run finished, or nothing to run;
//   failed    quarantined: processing it ended the server kMaxUnendedStarts
//             times; `error` says so and its runs are not started again.
// The crash counter (unended_starts): claim() raises it and commits before
// the delivery is processed, done or failed zero it, a clean stop
// (clear_starts) too; so a count left raised at start-up means that
// processing it ended the server.
//
// Asynchrony: the calls a networked store would answer later take a
// completion (look_up, commit, claim). Each calls it exactly once, on the
// loop thread (inside the call on SQLite), unless the queue is destroyed
// first: its destructor drops what has not been called.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "util/status.h"

namespace hearth::ci {

/// One webhook delivery received by `hearth serve`: the durable queue entry.
struct DeliveryRecord {
  std::string id;                      // X-GitHub-Delivery
  std::string event;                   // X-GitHub-Event
  std::string action;                  // the payload's "action"; empty when it has none
  std::string payload;                 // the body as received; empty when nothing runs or not read
  std::string digest;                  // hex SHA-256 of the body (replay detection)
  int64_t received_at = 0;             // ms since the epoch
  std::string state;                   // accepted | started | done | failed
  std::vector<std::string> run_ids;    // the runs it starts, one per matching workflow
  std::vector<std::string> workflows;  // the workflow file of each run, same order
  std::string error;                   // why a planned run could not start
  int unended_starts = 0;              // processing began this often and neither finished nor stopped cleanly
};

class DeliveryQueue {
 public:
  /// A delivery whose processing ended the server this often is
  /// quarantined at the next start instead of being processed again.
  static constexpr int kMaxUnendedStarts = 2;
  /// The queue's statements in one store's SQL dialect (delivery_queue.cpp).
  struct Dialect;

  /// The queue in `store`'s database, its tables brought to this build's
  /// schema (a table an older hearth kept in the engine's schema is adopted
  /// with its rows). `store` must outlive the queue.
  static Result<std::unique_ptr<DeliveryQueue>> open(engine::Store& store);
  ~DeliveryQueue();
  DeliveryQueue(const DeliveryQueue&) = delete;
  DeliveryQueue& operator=(const DeliveryQueue&) = delete;

  /// What the queue holds for a delivery arriving with `id` and a body of
  /// `digest`: the delivery with that id (without its payload), else the id
  /// of one whose body had the same digest (a replay).
  struct Known {
    std::optional<DeliveryRecord> delivery;
    std::optional<std::string> same_body;
  };
  void look_up(const std::string& id, const std::string& digest, std::function<void(Result<Known>)> done);

  // --- writes, staged in one transaction of the store ---
  Status begin();
  /// Queues a delivery. Fails if its id is taken.
  Status add(const DeliveryRecord& d);
  /// Sets the state and error; entering done or failed zeroes the crash
  /// counter.
  Status set_state(const std::string& id, const std::string& state, const std::string& error);
  /// Processing stopped cleanly without finishing (a graceful shutdown): the
  /// crash counter back to 0.
  Status clear_starts(const std::string& id);
  /// Commits what was staged. `done` gets the failure at once if the commit
  /// fails, else it is called once the commit survives a power loss (the
  /// store's when_durable): only then may a 202 promise the delivery.
  void commit(std::function<void(const Status&)> done);
  /// Abandons what was staged (after a failed write).
  void rollback();

  /// Takes the delivery for processing: its crash counter is raised and
  /// committed (it survives the process being killed) before `done` gets
  /// the stored payload; nullopt when no delivery has that id. Commit-level
  /// failures are the store's sticky failure.
  void claim(const std::string& id, std::function<void(Result<std::optional<std::string>>)> done);

  /// What an earlier process left unfinished, oldest first, without
  /// payloads. A start-up read, before anything is served: synchronous.
  struct Quarantined {
    DeliveryRecord delivery;
    std::string why;  // for the log and the delivery's error
  };
  struct Leftovers {
    std::vector<DeliveryRecord> resume;      // to process again
    std::vector<Quarantined> quarantine;     // to mark failed: they ended the server too often
    std::vector<DeliveryRecord> close;       // nothing to run: to mark done
    size_t size() const { return resume.size() + quarantine.size() + close.size(); }
  };
  Result<Leftovers> leftovers();

  /// The delivery with this id, with its payload; nullopt when none.
  Result<std::optional<DeliveryRecord>> find(const std::string& id);

  // --- a shared store (several workers on one database) ---
  // A worker claims a delivery before processing it: its instance id
  // (engine/lease.h) goes in the row's owner, with a heartbeat by the
  // database's clock that renew() keeps fresh. A delivery whose owner's
  // heartbeat is `stale_ms` old is claimed by another worker; done, failed
  // and a clean stop give the claim up.

  /// Claims the oldest delivery nobody processes (its crash counter raised,
  /// as claim() does), with its payload; nullopt when there is none.
  /// Outside a transaction, committed when it returns.
  Result<std::optional<DeliveryRecord>> claim_next(const std::string& owner, int64_t stale_ms);
  /// The unfinished deliveries `owner` holds, with payloads: after a lost
  /// connection, what a claim whose answer was lost may have taken.
  Result<std::vector<DeliveryRecord>> owned_by(const std::string& owner);
  /// Renews `owner`'s heartbeat on the deliveries it holds; their ids.
  Result<std::vector<std::string>> renew(const std::string& owner);

 private:
  DeliveryQueue(engine::Store& store, const Dialect& sql) : store_(store), tables_(store.tables()), sql_(sql) {}
  Result<Known> look_up_now(const std::string& id, const std::string& digest);
  Result<std::optional<std::string>> claim_now(const std::string& id);

  engine::Store& store_;
  engine::StoreTables& tables_;
  const Dialect& sql_;  // the statements in the store's dialect
};

}  // namespace hearth::ci
