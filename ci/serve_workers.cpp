// `hearth serve` on a shared store: several servers, one queue (serve.h).
//
// A worker holds the deliveries it claimed by a heartbeat (renew_, every
// sixth of the lease timeout) and looks for more whenever it has room: on
// its poll timer, after it stored a group, after a run ended. The runs of a
// claimed delivery start, or, when a dead worker had started them, are
// taken over (Engine::resume: the run's own lease, from its checkpoints).
// Timers and callbacks here run on the loop, like the rest of the server.
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
  reconnects_seen_ = store_.reconnects();
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
  if (!shared_ || !opts_.work || stopping_ || store_failed_ || !deliveries_) return;
  if (store_.reconnects() != reconnects_seen_) renew_claims();
  while (static_cast<int>(active_.size() + queue_.size()) + claiming_ < opts_.jobs) {
    auto claimed = deliveries_->claim_next(engine::lease_owner(), stale_ms());
    if (!claimed) return store_failure(claimed.status());
    if (!*claimed) break;
    take_claimed(std::move(**claimed));
  }
  pump();
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

void Server::renew_claims() {
  if (!deliveries_ || store_failed_) return;
  auto held = deliveries_->renew(engine::lease_owner());
  if (!held) return store_failure(held.status());
  // A delivery this worker no longer holds (its heartbeat was late and
  // another worker claimed it) is that worker's: what of it has not
  // started here is dropped; what runs here keeps its run's lease.
  std::set<std::string> still(held->begin(), held->end());
  std::vector<std::string> lost;
  for (auto& [id, p] : progress_)
    if (!still.count(id) && p.unstarted == p.unfinished) lost.push_back(id);
  for (auto& id : lost) {
    std::cerr << "hearth serve: delivery " << id << " was claimed by another worker\n";
    forget_delivery(id);
  }
  if (store_.reconnects() == reconnects_seen_) return;
  // A claim sent again after a lost connection may have taken one more
  // delivery than its answer said: whatever this worker holds, it runs.
  reconnects_seen_ = store_.reconnects();
  auto mine = deliveries_->owned_by(engine::lease_owner());
  if (!mine) return store_failure(mine.status());
  for (auto& d : *mine)
    if (!progress_.count(d.id)) take_claimed(std::move(d));
  pump();
}

bool Server::lost_to_another(const std::string& run_id) {
  auto run = store_.load_run(run_id);
  return run && run->status == RunStatus::running && !run->lease_owner.empty() &&
         run->lease_owner != engine::lease_owner();
}

// One transaction on the loop's connection, decided as the intake's writer
// decides; the group is answered once the database has made it durable
// (the loop goes on while the database answers the commit).
void Server::write_group(uint64_t ticket, std::vector<Pending>& group) {
  std::vector<Verdict> verdicts;
  Status s = deliveries_->begin();
  for (size_t i = 0; s.ok() && i < group.size(); ++i) {
    DeliveryRecord record = group[i].planned;
    record.payload = std::move(group[i].payload);
    auto v = decide_delivery(*deliveries_, record);
    if (!v) s = v.status();
    else verdicts.push_back(std::move(*v));
  }
  if (!s.ok()) {
    deliveries_->rollback();
    verdicts.clear();
    return written(ticket, s, verdicts);
  }
  deliveries_->commit([this, ticket, verdicts = std::move(verdicts)](const Status& committed) mutable {
    if (!committed.ok()) verdicts.clear();
    written(ticket, committed, verdicts);
  });
}

}  // namespace hearth::ci
