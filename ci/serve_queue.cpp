// `hearth serve`: the durable delivery queue and the runs it starts.
#include <iostream>

#include "ci/serve.h"
#include "ci/serve_responses.h"
#include "ci/webhook.h"
#include "engine/ids.h"
#include "engine/leftovers.h"
#include "util/json_limits.h"

namespace hearth::ci {

namespace {

nlohmann::json planned_runs(const DeliveryRecord& d) {
  auto runs = nlohmann::json::array();
  for (size_t i = 0; i < d.run_ids.size(); ++i) runs.push_back({{"id", d.run_ids[i]}, {"workflow", d.workflows[i]}});
  return runs;
}

bool run_id_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

// `s` when it can be part of a run id as it is, else a digest of it.
std::string id_part(const std::string& s, size_t max) {
  bool plain = !s.empty() && s.size() <= max;
  for (char c : s) plain = plain && run_id_char(c);
  return plain ? s : "x" + sha256_hex(s).substr(0, std::min<size_t>(max - 1, 32));
}

}  // namespace

std::string Server::run_id_for(const std::string& delivery, const std::string& workflow_path) const {
  std::string stem = std::filesystem::path(workflow_path).stem().string();
  return id_part(delivery, 80) + "-" + id_part(stem, 40);
}

void Server::accept_delivery(http::HttpRequest&& req, http::Responder r) {
  Rejection why;
  std::string mac;  // computed while the body arrived
  if (auto* tap = dynamic_cast<HmacTap*>(req.tap.get())) mac = tap->final_hex();
  // The body's digest (for the replay check) is left to the intake's writer,
  // off the loop thread, with the duplicate look-ups.
  auto d = check_delivery(opts_.webhook_secret, req.headers, std::move(req.body), why, mac.empty() ? nullptr : &mac,
                          /*digest=*/false);
  if (!d) {
    if (why.status == 401) std::cerr << "hearth serve: refused a delivery from " << req.peer << ": " << why.message << "\n";
    return r.send(error_response(why.status, why.message));
  }
  DeliveryRecord rec;
  rec.id = std::move(d->id);
  rec.event = std::move(d->event);
  rec.action = std::move(d->action);
  rec.digest = std::move(d->digest);  // empty unless the body was form-encoded
  rec.received_at = engine::now_ms();
  for (auto* wf : workflows_.matching(rec.event, rec.action)) {
    rec.workflows.push_back(wf->path);
    rec.run_ids.push_back(run_id_for(rec.id, wf->path));
  }
  rec.state = rec.run_ids.empty() ? "done" : "accepted";
  batch_.push_back(Pending{std::move(rec), std::move(d->json), std::move(r), std::move(req.peer)});
  request_flush();
}

void Server::answer_known(const DeliveryRecord& d, http::Responder r) {
  r.send(json_response(200, {{"delivery", d.id}, {"duplicate", true}, {"state", d.state}, {"runs", planned_runs(d)}}));
}

void Server::request_flush() { uv_idle_start(&idle_, [](uv_idle_t* h) noexcept { uv_idle_stop(h); }); }

void Server::on_check(uv_check_t* h) noexcept {
  auto* self = static_cast<Server*>(h->data);
  if (self->batch_.empty() && self->state_writes_.empty()) return;
  self->flush();
  self->pump();
  self->maybe_finish_shutdown();
}

// The group commit: the deliveries received since the last one go to the
// intake's writer as one group (answered from written(), once durable);
// queue state changes are committed here, on the run store's connection.
void Server::flush() {
  if (!batch_.empty()) {
    uint64_t ticket = next_ticket_++;
    auto& sent = written_[ticket] = std::move(batch_);
    batch_.clear();
    if (store_failed_) {
      std::vector<Verdict> none;
      written(ticket, store_.health().ok() ? Status{Error{"the state database failed"}} : store_.health(), none);
    } else {
      // The records go to the writer; the responders wait here for its verdicts.
      std::vector<DeliveryRecord> records;
      records.reserve(sent.size());
      for (auto& p : sent) {
        records.push_back(p.planned);
        records.back().payload = std::move(p.payload);  // stored by the writer only when runs are planned
      }
      writer_->submit(ticket, std::move(records));
    }
  }
  if (!state_writes_.empty()) flush_states();
}

void Server::written(uint64_t ticket, const Status& stored, std::vector<Verdict>& verdicts) {
  auto node = written_.extract(ticket);
  if (node.empty()) return;
  answer_batch(node.mapped(), stored, verdicts);
  if (!stored.ok()) return;
  claim_some();
  pump();
  maybe_finish_shutdown();
}

// Queue state changes (started, done, failed, a clean stop) in one
// transaction of the run store; what follows them waits for its fsync.
void Server::flush_states() {
  auto writes = std::move(state_writes_);
  state_writes_.clear();
  Status s = store_failed_ ? store_.health() : deliveries_->begin();
  for (size_t i = 0; s.ok() && i < writes.size(); ++i) {
    const auto& w = writes[i];
    s = w.state.empty() ? deliveries_->clear_starts(w.delivery) : deliveries_->set_state(w.delivery, w.state, w.error);
  }
  if (!s.ok()) {
    deliveries_->rollback();
    return store_failure(s);
  }
  ++awaiting_durable_;
  deliveries_->commit([this](const Status& stored) {
    --awaiting_durable_;
    if (!stored.ok()) return store_failure(stored);
    pump();
    maybe_finish_shutdown();
  });
}

// Every answer is sent after the writer's fsync, which covers the new rows
// and whatever the look-ups read (the run store's commits are in the same
// log): a duplicate's state is as durable as a new delivery's 202.
void Server::answer_batch(std::vector<Pending>& batch, const Status& stored, std::vector<Verdict>& verdicts) {
  if (!stored.ok() || verdicts.size() != batch.size()) {
    for (auto& p : batch) p.responder.send(error_response(503, "the delivery could not be stored; deliver it again later"));
    return store_failure(stored.ok() ? Status{Error{"the intake's writer lost a group (a bug)"}} : stored);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Verdict& v = verdicts[i];
    const std::string& id = batch[i].planned.id;
    http::Responder& r = batch[i].responder;
    if (v.kind == Verdict::Kind::known) {
      answer_known(*v.known, std::move(r));
      continue;
    }
    if (v.kind == Verdict::Kind::replay) {
      std::cerr << "hearth serve: delivery " << id << " from " << batch[i].peer << " repeats the body of delivery "
                << v.replay_of << ": nothing started\n";
      r.send(json_response(200, {{"delivery", id}, {"duplicate", true}, {"replay_of", v.replay_of},
                                 {"runs", nlohmann::json::array()}}));
      continue;
    }
    ++accepted_;
    const DeliveryRecord& d = batch[i].planned;
    if (d.run_ids.empty()) {
      r.send(json_response(200, {{"delivery", d.id}, {"runs", nlohmann::json::array()},
                                 {"message", "no workflow matches " + d.event + (d.action.empty() ? "" : "." + d.action)}}));
    } else {
      r.send(json_response(202, {{"delivery", d.id}, {"runs", planned_runs(d)}}));
      if (!shared_) enqueue(d);  // shared: whichever worker claims it first runs it
    }
  }
  ++commits_;
}

void Server::store_failure(const Status& s) {
  std::cerr << "hearth serve: " << s.message() << "\n";
  if (store_failed_) return;
  store_failed_ = true;
  std::cerr << "hearth serve: the state database failed; stopping (restart to continue)\n";
  shutdown(nullptr);
}

Status Server::recover() {
  auto left = deliveries_->leftovers();
  if (!left) return left.status();
  for (auto& d : left->close) set_state(d.id, "done", d.error);
  for (auto& [d, why] : left->quarantine) {
    std::cerr << "hearth serve: delivery " << d.id << " marked failed: " << why << "\n";
    set_state(d.id, "failed", d.error.empty() ? why : d.error + "\n" + why);
    end_leftovers(d);
  }
  size_t runs = 0;
  for (auto& d : left->resume) {
    enqueue(d);
    runs += d.run_ids.size();
  }
  if (left->size() > 0)
    std::cerr << "hearth serve: picked up " << left->size() << " unfinished deliveries (" << runs << " runs)\n";
  return {};
}

// A crashed server's steps live on in their own sessions; a resume would
// end them before running the step again. A delivery given up on is not
// resumed, so its runs' leftovers are ended here.
void Server::end_leftovers(const DeliveryRecord& d) {
  for (const auto& run : d.run_ids) {
    auto steps = store_.load_steps(run);
    if (!steps) continue;  // never started
    for (const auto& st : *steps)
      if (st.status == StepStatus::running) engine::kill_leftovers(run, st.id);
  }
}

void Server::enqueue(const DeliveryRecord& d) {
  auto& p = progress_[d.id];
  p.state = d.state;
  p.unstarted += d.run_ids.size();
  p.unfinished += d.run_ids.size();
  for (size_t i = 0; i < d.run_ids.size(); ++i) queue_.push_back(QueuedRun{d.id, d.run_ids[i], d.workflows[i]});
}

void Server::pump() {
  while (!stopping_ && !store_failed_ && !queue_.empty() &&
         static_cast<int>(active_.size()) + claiming_ < opts_.jobs) {
    QueuedRun q = std::move(queue_.front());
    queue_.pop_front();
    start_run(q);
  }
}

void Server::start_run(const QueuedRun& q) {
  auto& p = progress_[q.delivery];
  if (p.claimed) return start_claimed(q);
  // Claimed (its start counted and committed) before anything of the
  // delivery is processed: if processing crashes the server, the next start
  // sees the count raised.
  p.claimed = true;
  ++claiming_;
  deliveries_->claim(q.delivery, [this, q](Result<std::optional<std::string>> payload) {
    --claiming_;
    if (!payload) return store_failure(payload.status());
    progress_[q.delivery].stored_payload = std::move(*payload);
    start_claimed(q);
  });
}

void Server::start_claimed(const QueuedRun& q) {
  auto& p = progress_[q.delivery];
  if (--p.unstarted == 0 && p.state == "accepted") set_state(q.delivery, "started", "");
  auto on_finished = [this, q](const hearth::RunResult& o) {
    active_.erase(q.run_id);
    if (shared_ && lost_to_another(q.run_id)) {
      // Its lease expired and another worker runs it now, and owns the delivery.
      std::cerr << "hearth serve: run " << q.run_id << " was taken over by another worker: " << o.error << "\n";
      forget_delivery(q.delivery);
      if (!stopping_) pump();
      return maybe_finish_shutdown();
    }
    bool interrupted = o.status == hearth::RunStatus::cancelled && cancelled_;
    run_done(q, o.error, interrupted);
    request_flush();
    claim_some();  // room for another delivery (a shared store)
    if (!stopping_) pump();
    maybe_finish_shutdown();
  };
  auto existing = store_.load_run(q.run_id);
  if (existing) {
    // Started before a crash or a shutdown: finished runs count as done.
    if (existing->status == RunStatus::succeeded || existing->status == RunStatus::failed) return run_done(q, "", false);
    hearth::ResumeOptions ro;
    ro.jobs = opts_.step_jobs;
    auto resumed = engine_.resume(q.run_id, ro, nullptr, on_finished);
    if (!resumed) return start_failed(q, resumed.message());
    active_.insert(q.run_id);
    std::cerr << "hearth serve: resumed run " << q.run_id << " of delivery " << q.delivery << "\n";
    return;
  }
  const workflows::Workflow* wf = workflows_.find(q.workflow);
  if (!wf) return run_done(q, q.workflow + " is gone or no longer loads", false);
  if (!p.payload) {
    if (!p.stored_payload) return run_done(q, "the delivery is not recorded", false);
    std::string why;
    p.payload = parse_untrusted_json(*p.stored_payload, &why);
    if (!p.payload) return run_done(q, "the stored payload cannot be used: " + why, false);
    p.stored_payload.reset();
  }
  hearth::StartOptions ro;
  ro.run_id = q.run_id;
  ro.repo = opts_.repo;
  ro.jobs = opts_.step_jobs;
  // The last run of the delivery to start takes the payload: a DOM copy of
  // a push payload is a measurable part of the CPU per delivery.
  nlohmann::json payload;
  if (p.unstarted == 0) payload = std::move(*std::exchange(p.payload, std::nullopt));
  else payload = *p.payload;
  auto started = engine_.start(*wf, std::move(payload), std::move(ro), on_finished);
  if (!started) return start_failed(q, started.message());
  active_.insert(q.run_id);
}

void Server::run_done(const QueuedRun& q, const std::string& error, bool interrupted) {
  auto it = progress_.find(q.delivery);
  if (it == progress_.end()) return;
  auto& p = it->second;
  if (!error.empty()) {
    std::cerr << "hearth serve: run " << q.run_id << " of delivery " << q.delivery << ": " << error << "\n";
    p.errors += (p.errors.empty() ? "" : "\n") + q.run_id + ": " + error;
  }
  p.interrupted = p.interrupted || interrupted;
  if (--p.unfinished > 0) return;
  // Cut short by shutdown: left unfinished, so the next start resumes it;
  // a clean stop is not a crash, so its start is not counted against it.
  if (!p.interrupted) set_state(q.delivery, "done", p.errors);
  else set_state(q.delivery, "", "");
  progress_.erase(it);
}

void Server::set_state(const std::string& delivery, const std::string& state, const std::string& error) {
  state_writes_.push_back(StateWrite{delivery, state, error});
  request_flush();
}

}  // namespace hearth::ci
