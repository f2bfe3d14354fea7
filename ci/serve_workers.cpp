// `hearth serve` on a shared store: several servers, one queue (serve.h).
//
// A worker holds the deliveries it claimed by a heartbeat (renew_, every
// sixth of the lease timeout) and looks for more whenever it has room: on
// its poll timer, after it stored a group, after a run ended. The runs of a
// claimed delivery start, or, when a dead worker had started them, are
// taken over (Engine::resume: the run's own lease, from its checkpoints).
// Claims and renewals are jobs of the intake's thread and connection
// (intake_writer.h): the loop never waits for the database's answer to
// them, nor for its reconnects. Timers and the jobs' answers run on the
// loop, like the rest of the server.
#include <algorithm>
#include <iostream>
#include <set>

#include "ci/serve.h"
#include "engine/lease.h"

namespace hearth::ci {

namespace {

std::chrono::milliseconds clamp_ms(int64_t ms, int64_t lo, int64_t hi) {
  return std::chrono::milliseconds(std::clamp(ms, lo, hi));
}

}  // namespace

Status Server::start_worker() {
  reconnects_seen_ = 0;  // the intake's connection is new
  auto renew_every = clamp_ms(stale_ms() / 6, 100, 5000);
  auto poll_every = clamp_ms(stale_ms() / 10, 100, 1000);
  uv_timer_start(&renew_, [](uv_timer_t* t) noexcept { static_cast<Server*>(t->data)->renew_claims(); },
                 static_cast<uint64_t>(renew_every.count()), static_cast<uint64_t>(renew_every.count()));
  uv_timer_start(&poll_, [](uv_timer_t* t) noexcept { static_cast<Server*>(t->data)->claim_some(); }, 0,
                 static_cast<uint64_t>(poll_every.count()));
  // The poll keeps a worker without a listener alive until shutdown()
  // stops it; the renewal alone does not.
  uv_unref(reinterpret_cast<uv_handle_t*>(&renew_));
  return {};
}

void Server::claim_some() {
  if (!shared_ || !opts_.work || stopping_ || store_failed_ || !writer_) return;
  if (asking_) {
    ask_again_ = true;  // once the claims in flight are answered
    return;
  }
  ask_queue(false);
}

void Server::renew_claims() {
  if (!writer_ || store_failed_ || closed_) return;
  ask_queue(true);
}

struct Server::QueueAnswer {
  Status failed;
  std::optional<std::vector<std::string>> held;  // asked to renew: the deliveries still this worker's
  std::vector<DeliveryRecord> claimed;           // with their payloads
  std::optional<std::vector<DeliveryRecord>> owned;  // after a reconnect: every delivery this worker holds
  int64_t reconnects = 0;                        // of the intake's connection
};

// One job on the intake's thread: the renewal (when asked), a claim for
// each free slot, and, when that connection was made again since the last
// answer, what this worker holds (a claim sent again after a lost
// connection may have taken one more delivery than its answer said).
void Server::ask_queue(bool renew) {
  int room = opts_.jobs - static_cast<int>(active_.size() + queue_.size()) - claiming_ - asked_claims_;
  if (stopping_ || !opts_.work || asking_) room = 0;
  if (!renew && room <= 0) return;
  if (room > 0) asking_ = true;
  asked_claims_ += std::max(room, 0);
  auto answer = std::make_shared<QueueAnswer>();
  writer_->call([this, answer, renew, room, seen = reconnects_seen_, owner = engine::lease_owner(),
                 stale = stale_ms()](DeliveryQueue& queue, engine::Store& store) -> std::function<void()> {
    // On the intake's thread: only the queue, the store and the captures.
    QueueAnswer& a = *answer;
    if (renew) {
      auto held = queue.renew(owner);
      if (held) a.held = std::move(*held);
      else a.failed = held.status();
    }
    for (int i = 0; a.failed.ok() && i < room; ++i) {
      auto claimed = queue.claim_next(owner, stale);
      if (!claimed) a.failed = claimed.status();
      else if (!*claimed) break;
      else a.claimed.push_back(std::move(**claimed));
    }
    a.reconnects = store.reconnects();
    if (a.failed.ok() && a.reconnects != seen) {
      auto mine = queue.owned_by(owner);
      if (mine) a.owned = std::move(*mine);
      else a.failed = mine.status();
    }
    // Back on the loop.
    return [this, answer, room] {
      asked_claims_ -= std::max(room, 0);
      if (room > 0) asking_ = false;
      queue_answered(*answer);
    };
  });
}

void Server::queue_answered(QueueAnswer& a) {
  if (!a.failed.ok()) {
    store_failure(a.failed);
    return maybe_finish_shutdown();
  }
  if (a.held) {
    // A delivery this worker no longer holds (its heartbeat was late and
    // another worker claimed it) is that worker's: what of it has not
    // started here is dropped; what runs here keeps its run's lease.
    std::set<std::string> still(a.held->begin(), a.held->end());
    std::vector<std::string> lost;
    for (auto& [id, p] : progress_)
      if (!still.count(id) && p.unstarted == p.unfinished) lost.push_back(id);
    for (auto& id : lost) {
      std::cerr << "hearth serve: delivery " << id << " was claimed by another worker\n";
      forget_delivery(id);
    }
  }
  for (auto& d : a.claimed) take_claimed(std::move(d));
  reconnects_seen_ = std::max(reconnects_seen_, a.reconnects);
  if (a.owned)
    for (auto& d : *a.owned)
      if (!progress_.count(d.id)) take_claimed(std::move(d));
  if (stopping_) give_back_queued();  // claimed while the server began to stop
  pump();
  if (std::exchange(ask_again_, false)) claim_some();
  maybe_finish_shutdown();
}

void Server::give_back_queued() {
  // Claimed, not started: given back at once, for another worker.
  auto queued = std::move(queue_);
  queue_.clear();
  for (const auto& q : queued) run_done(q, "", /*interrupted=*/true);
}

void Server::take_claimed(DeliveryRecord d) {
  if (progress_.count(d.id)) return;  // ours already, and in progress
  if (d.run_ids.empty()) return set_state(d.id, "done", d.error);
  // The claim counted this start: more than the limit before it means that
  // processing it ended a worker that often.
  if (d.unended_starts > DeliveryQueue::kMaxUnendedStarts) {
    std::string why = "hearth serve ended " + std::to_string(d.unended_starts - 1) +
                      " times (crashed or was killed) while processing this delivery; it is not started again "
                      "(hearth resume <run> continues its runs once the cause is found)";
    std::cerr << "hearth serve: delivery " << d.id << " marked failed: " << why << "\n";
    set_state(d.id, "failed", d.error.empty() ? why : d.error + "\n" + why);
    return end_leftovers(d);
  }
  std::string payload = std::move(d.payload);
  d.payload.clear();
  enqueue(d);
  auto& p = progress_[d.id];
  p.claimed = true;  // its start is counted: claim_next did it
  p.stored_payload = std::move(payload);
}

void Server::forget_delivery(const std::string& delivery) {
  std::erase_if(queue_, [&](const QueuedRun& q) { return q.delivery == delivery; });
  progress_.erase(delivery);
}

void Server::start_failed(const QueuedRun& q, const std::string& error) {
  // Another worker claimed the delivery meanwhile (this one's heartbeat was
  // late) and started or took over the run first: it is that worker's now.
  if (shared_ && lost_to_another(q.run_id)) {
    std::cerr << "hearth serve: run " << q.run_id << " is run by another worker: " << error << "\n";
    return forget_delivery(q.delivery);
  }
  run_done(q, error, false);
}

bool Server::lost_to_another(const std::string& run_id) {
  auto run = store_.load_run(run_id);
  return run && run->status == RunStatus::running && !run->lease_owner.empty() &&
         run->lease_owner != engine::lease_owner();
}

}  // namespace hearth::ci
