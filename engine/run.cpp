// A run's scheduling passes and the life of its steps' attempts.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "engine/run.h"
#include "engine/checkout_records.h"
#include "engine/remove_later.h"
#include "engine/step_env.h"
#include "engine/working_directory.h"

namespace hearth::engine {

Status Run::choose_sandbox() {
  const std::string& kind = wf_.sandbox.kind;
  bool explicit_table = wf_.sandbox.location.line > 0;
  std::string where = wf_.path;
  if (explicit_table)
    where += ":" + std::to_string(wf_.sandbox.location.line) + ":" + std::to_string(wf_.sandbox.location.column);
  sandbox::Sandbox& fallback = engine_.default_sandbox();
  if (!explicit_table || fallback.kind() == kind) {
    sandbox_ = &fallback;
  } else {
    sandbox_ = engine_.sandbox_of_kind(kind);
    if (!sandbox_)
      return Error{where + ": [sandbox] kind = \"" + kind + "\" is not available to this engine (it runs commands with '" +
                   std::string(fallback.kind()) + "')"};
  }
  // Fail closed: a run never moves to a weaker backend than it asked for.
  if (auto why = sandbox_->unavailable(); !why.empty())
    return Error{where + ": this workflow runs its steps in the " + std::string(sandbox_->kind()) +
                 " sandbox, which cannot start on this host: " + std::string(why) +
                 ". Nothing was run. Allow the sandbox as that page says, or, only for a trusted workflow on a "
                 "runner that is itself isolated, set [sandbox] kind = \"local\" to run its steps unisolated"};
  return {};
}

std::string Run::workspace_dir() const {
  if (wf_.sandbox.workspace != "repo") {
    // Per run, beside the scratch directories; kept across steps and resume.
    return (std::filesystem::path(engine_.scratch_root()).parent_path() / "workspaces" / id()).string();
  }
  return opts_.repo;
}

std::optional<std::string> Run::hidden_state_dir() const {
  std::error_code ec;
  auto state = std::filesystem::weakly_canonical(std::filesystem::path(engine_.scratch_root()).parent_path(), ec);
  auto ws = std::filesystem::weakly_canonical(workspace_->path, ec);
  auto rel = state.lexically_relative(ws);
  if (!ec && !rel.empty() && *rel.begin() != ".." && rel != ".") return rel.string();
  return std::nullopt;
}

Status Run::ensure_workspace() {
  if (workspace_) return {};
  sandbox::WorkspaceSpec spec;
  if (!sandbox::parse_workspace_kind(wf_.sandbox.workspace, spec.kind))
    return Error{"unknown workspace kind '" + wf_.sandbox.workspace + "'"};
  spec.repo = std::filesystem::absolute(opts_.repo).lexically_normal().string();
  spec.ref = wf_.sandbox.ref;
  spec.dir = workspace_dir();
  // A checkout is made at the commit recorded when it was first made: a
  // run taken over where its workspace is not gets the same files back.
  std::optional<std::string> recorded;
  if (spec.kind == sandbox::WorkspaceKind::checkout) {
    auto r = recorded_checkout(engine_.store(), id());
    if (!r) return r.error();
    recorded = std::move(*r);
    if (recorded) spec.ref = *recorded;
  }
  auto w = sandbox::prepare_workspace(spec);
  if (!w) return Error{"workspace = \"" + wf_.sandbox.workspace + "\": " + w.message()};
  if (spec.kind == sandbox::WorkspaceKind::checkout && !recorded)
    if (auto s = record_checkout(engine_.store(), id(), w->commit); !s.ok()) return s;
  workspace_ = *w;
  return {};
}

Status Run::begin(const nlohmann::json& payload) {
  payload_ = payload;
  if (auto s = choose_sandbox(); !s.ok()) return s;
  if (auto s = render_env(); !s.ok()) return s;
  Store& store = engine_.store();
  if (wf_.sandbox.workspace == "checkout")
    if (auto s = prepare_checkout_records(store); !s.ok()) return s;
  RunRecord r{opts_.run_id, wf_.name, wf_.path, wf_.hash, wf_.text, payload_, opts_.repo, RunStatus::running,
              now_ms(),     {},       "",       lease_owner(), now_ms()};
  if (auto s = store.begin(); !s.ok()) return s;
  Status s = store.insert_run(r);
  for (auto& st : steps_)
    if (s.ok()) s = store.insert_step(id(), st.rec);
  if (s.ok()) s = event(event_type::run_started, "", {{"workflow", wf_.name}, {"workflow_hash", wf_.hash}, {"payload", payload_}});
  return commit_and_go(s);
}

void Run::cancel(const std::string& reason) {
  if (cancelling_ || finishing_) return;
  cancelling_ = true;
  cancel_reason_ = reason;
  for (auto& s : steps_)
    if (s.attempt) s.attempt->cancel();
  schedule();
}

Status Run::render_env() {
  nlohmann::json ctx = {{"inputs", payload_}, {"run", run_context()}};
  for (auto& v : wf_.env) {
    auto text = v.value.parsed.render(ctx);
    if (!text) return Error{wf_.path + ":" + std::to_string(v.value.location.line) + ": env '" + v.name + "': " + text.message()};
    env_[v.name] = *text;
  }
  // What every step's environment starts from: a short allow-list, never
  // the engine's whole environment (step_env.h), then [env]. Secrets are for
  // granted programs and proxies' upstreams, never a step.
  base_env_ = step_base_env(isolated());
  for (auto& name : secret_names(wf_)) base_env_.erase(name);
  for (auto& [k, v] : env_.items()) base_env_[k] = v.get<std::string>();
  // The declared secrets, read once: every attempt takes them from here.
  secret_values_ = read_declared_secrets(wf_);
  secrets_ = workflow_secrets(secret_values_);
  // So is what the model's client takes from the environment (its API key
  // above all), when a step talks to a model: client_for() reads only this.
  model_env_.clear();
  if (std::any_of(wf_.steps.begin(), wf_.steps.end(), [](const workflows::Step& st) { return st.agent.has_value(); }))
    for (const char* name : kModelEnv)
      if (const char* v = std::getenv(name); v && *v) model_env_[name] = v;
  ctx_ = {{"inputs", payload_}, {"env", env_}, {"steps", nlohmann::json::object()}, {"run", run_context()}};
  return {};
}

Status Run::commit_and_go(Status s, std::optional<PassOutcome> first) {
  Store& store = engine_.store();
  if (s.ok()) s = store.commit();
  if (!s.ok()) {
    store.rollback();
    pending_events_.clear();
    return s;
  }
  heartbeat_->start(heartbeat_interval(), heartbeat_interval());
  if (first) {
    act_when_durable(std::move(*first));
    return {};
  }
  after_durable([this](const Status& synced) {
    if (!synced.ok()) return fail_fatally(synced);
    schedule();
  });
  return {};
}

// What a commit lets the run do (deliver its events, start steps, report the
// result) waits until the commit is durable (store.h: when_durable); the
// events go with it, so observers see them in order and only once durable.
void Run::after_durable(std::function<void(const Status&)> then) {
  engine_.store().when_durable(this, [this, events = std::move(pending_events_), then = std::move(then)](
                                         const Status& synced) mutable {
    if (synced.ok()) deliver_events(std::move(events));
    then(synced);
  });
  pending_events_.clear();
}

void Run::heartbeat() {
  // Once the pass that records the end has committed, the lease is given
  // back in it: nothing to renew while that commit becomes durable.
  if (finishing_ || finish_recorded_ || !fatal_.ok()) return;
  Store& store = engine_.store();
  Status s = store.begin();
  if (s.ok()) s = store.renew_lease(id(), lease_owner(), now_ms());
  if (s.ok()) s = store.commit();
  if (!s.ok()) {
    store.rollback();
    fail_fatally(s);  // may close the Run: nothing after it
  }
}

std::vector<size_t> Run::reads_of(const workflows::Step& def) const {
  std::set<size_t> out;
  auto add = [&](const workflows::expr::Expression& e) {
    for (auto& r : e.step_refs())
      if (auto it = index_.find(r); it != index_.end()) out.insert(it->second);
  };
  auto add_template = [&](const workflows::expr::Template& t) {
    for (auto& p : t.parts)
      if (p.expr) add(*p.expr);
  };
  if (def.if_expr) add(*def.if_expr);
  for (auto& v : def.env) add_template(v.value.parsed);
  for (auto& slot : def.run_slots) add(slot.second);
  if (def.working_directory) add_template(def.working_directory->parsed);
  if (def.agent) {
    if (def.agent->prompt) add_template(def.agent->prompt->parsed);
    for (auto& v : def.agent->with) add_template(v.value.parsed);
  }
  return {out.begin(), out.end()};
}

const StepState::Upstream& Run::upstream_of(StepState& st) {
  if (st.upstream) return *st.upstream;
  StepState::Upstream up;
  for (size_t n : st.needs) {
    StepState& need = steps_[n];
    bool failed = need.rec.status == StepStatus::failed && !need.def->continue_on_error;
    bool blocked = failed || need.rec.status == StepStatus::cancelled;
    const auto& above = upstream_of(need);
    if ((blocked || above.blocked) && up.culprit.empty()) up.culprit = blocked ? need.rec.id : above.culprit;
    up.failed = up.failed || failed || above.failed;
    up.blocked = up.blocked || blocked || above.blocked;
  }
  st.upstream = up;
  return *st.upstream;
}

void Run::on_idle(uv_idle_t* h) noexcept {
  auto* self = static_cast<Run*>(h->data);
  uv_idle_stop(h);
  // Spawns left over from the last iteration go first; the pass waits for
  // the next iteration if they used this one's budget.
  if (self->spawn_some()) return;
  if (!self->pass_scheduled_) return;
  self->pass_scheduled_ = false;
  self->pass();
}

bool Run::spawn_some() {
  if (!fatal_.ok()) spawn_queue_.clear();
  uint64_t start = uv_hrtime();
  while (!spawn_queue_.empty()) {
    if (uv_hrtime() - start > kSpawnBudgetNs) {
      uv_idle_start(&idle_, &Run::on_idle);
      return true;
    }
    size_t i = spawn_queue_.front();
    spawn_queue_.pop_front();
    spawn(steps_[i]);
  }
  return false;
}

Status Run::event(const char* type, const std::string& step, nlohmann::json data) {
  EventRecord e{id(), ++seq_, now_ms(), type, step, std::move(data)};
  Status s = engine_.store().insert_event(e);
  pending_events_.push_back(std::move(e));
  return s;
}

// Writes done between scheduling passes (granted-command journal, proxy
// requests, agent checkpoints and turns): each in its own transaction,
// committed and its events delivered before the caller goes on. A failed
// write stops the run (fail_fatally).
Status Run::commit_now(const std::function<Status()>& write) {
  Store& store = engine_.store();
  if (!fatal_.ok()) return fatal_;
  Status s = store.begin();
  if (s.ok()) s = write();
  if (s.ok()) s = store.commit();
  if (!s.ok()) {
    store.rollback();
    pending_events_.clear();
    fail_fatally(s);
    return s;
  }
  after_durable([this](const Status& synced) {
    if (!synced.ok()) fail_fatally(synced);
  });
  return {};
}

void Run::deliver_events(std::vector<EventRecord> events) {
  for (auto& e : events)
    for (auto* o : engine_.observers()) o->on_event(e);
}

void Run::pass() {
  if (finishing_ || finish_recorded_) return;
  if (!fatal_.ok()) return finish_after_fatal();
  Store& store = engine_.store();
  PassOutcome out;
  Status s = store.begin();
  if (s.ok()) s = pass_in_transaction(out);
  if (s.ok()) s = store.commit();
  // ---- after this line the pass's changes survive a kill; ----
  // ---- what acts on them waits until they are durable      ----
  if (!s.ok()) {
    store.rollback();
    return fail_fatally(s);
  }
  act_when_durable(std::move(out));
}

Status Run::pass_in_transaction(PassOutcome& out) {
  Status s;
  for (size_t i = 0; s.ok() && i < steps_.size(); ++i)
    if (steps_[i].attempt && steps_[i].attempt->ended()) s = record_outcome(steps_[i]);
  if (s.ok()) s = decide_steps(out.to_spawn);
  if (s.ok() && running_ == 0 && out.to_spawn.empty() && all_terminal()) {
    s = finish_run();
    out.run_done = finish_recorded_ = s.ok();
  }
  return s;
}

void Run::act_when_durable(PassOutcome out) {
  // What the attempts need before they act is made while the commit syncs.
  for (size_t i : out.to_spawn) steps_[i].attempt->ready();
  after_durable([this, to_spawn = std::move(out.to_spawn), run_done = out.run_done](const Status& synced) {
    if (!synced.ok()) return fail_fatally(synced);
    spawn_queue_.insert(spawn_queue_.end(), to_spawn.begin(), to_spawn.end());
    spawn_some();
    if (run_done) finish_with(outcome_status(), "");
    else arm_retry_timer();
  });
}

void Run::fail_fatally(const Status& s) {
  if (!fatal_.ok()) return;
  pending_events_.clear();
  fatal_ = s;
  for (auto& st : steps_)
    if (st.attempt) st.attempt->cancel();
  finish_after_fatal();
}

void Run::arm_retry_timer() {
  std::optional<int64_t> earliest;
  for (auto& st : steps_)
    if (st.rec.status == StepStatus::waiting && st.rec.retry_at && (!earliest || *st.rec.retry_at < *earliest))
      earliest = st.rec.retry_at;
  if (!earliest) {
    retry_timer_->stop();
    return;
  }
  retry_timer_->start(std::chrono::milliseconds(std::max<int64_t>(0, *earliest - now_ms())));
}

Status Run::decide_steps(std::vector<size_t>& to_spawn) {
  if (cancelling_ && !cancel_recorded_) {
    cancel_recorded_ = true;
    if (auto s = event(event_type::run_cancelling, "", {{"reason", cancel_reason_}}); !s.ok()) return s;
  }
  int jobs = opts_.jobs > 0 ? opts_.jobs : static_cast<int>(uv_available_parallelism());
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < steps_.size(); ++i) {
      StepState& st = steps_[i];
      bool waiting = st.rec.status == StepStatus::waiting;
      if (st.rec.status != StepStatus::pending && !waiting) continue;
      if (cancelling_) {
        if (auto s = close_step(st, StepStatus::cancelled, cancel_reason_, event_type::step_cancelled); !s.ok()) return s;
        changed = true;
        continue;
      }
      if (waiting && st.rec.retry_at && *st.rec.retry_at > now_ms()) continue;
      bool ready = true;
      for (size_t n : st.needs) ready = ready && terminal(steps_[n].rec.status);
      if (!ready) continue;
      if (running_ + static_cast<int>(to_spawn.size()) >= jobs) return {};
      if (waiting) {
        // A retry: its condition held when it first ran.
        Status prepared = prepare_attempt(st, context_for(st));
        if (!prepared.ok()) {
          if (auto s = close_step(st, StepStatus::failed, prepared.message(), event_type::step_failed); !s.ok()) return s;
        } else {
          if (auto s = start_attempt(st); !s.ok()) return s;
          to_spawn.push_back(i);
        }
        changed = true;
        continue;
      }
      auto decision = decide(st);
      if (!decision.ok()) {
        if (auto s = close_step(st, StepStatus::failed, decision.message(), event_type::step_failed); !s.ok()) return s;
      } else if (!decision->empty()) {
        if (auto s = close_step(st, StepStatus::skipped, *decision, event_type::step_skipped); !s.ok()) return s;
      } else {
        if (auto s = start_attempt(st); !s.ok()) return s;
        to_spawn.push_back(i);
      }
      changed = true;
    }
  }
  return {};
}

Result<std::string> Run::decide(StepState& st) {
  workflows::expr::StatusFunctions fns;
  fns.cancelled = cancelling_;
  const auto& up = upstream_of(st);
  fns.success = !up.blocked;
  fns.failure = up.failed;
  const std::string& failed_need = up.culprit;
  nlohmann::json& ctx = context_for(st);
  if (st.def->if_expr) {
    auto v = st.def->if_expr->evaluate(ctx, fns);
    if (!v) return Error{"cannot evaluate 'if': " + v.message()};
    bool run = workflows::expr::truthy(*v) && (st.def->if_expr->uses_status_function() || fns.success);
    if (!run) {
      if (!fns.success && !st.def->if_expr->uses_status_function()) return "'" + failed_need + "' did not succeed";
      return "'if' was false: " + st.def->if_expr->text();
    }
  } else if (!fns.success) {
    return "'" + failed_need + "' did not succeed";
  }
  if (auto s = prepare_attempt(st, ctx); !s.ok()) return s.error();
  return std::string();
}

nlohmann::json& Run::context_for(const StepState& st) {
  nlohmann::json steps = nlohmann::json::object();
  for (size_t a : st.reads) {
    const StepRecord& r = steps_[a].rec;
    steps[r.id] = {{"status", to_string(r.status)}, {"outputs", r.outputs}, {"exit-code", r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json()},
                   {"result", r.result}};
  }
  ctx_["steps"] = std::move(steps);
  ctx_["env"] = env_;
  return ctx_;
}

Status Run::prepare_attempt(StepState& st, nlohmann::json& ctx) {
  st.attempt = std::make_unique<Attempt>(*this, *st.def, st.rec.attempts + 1);
  Status s = st.attempt->prepare(base_env_, ctx);
  if (!s.ok()) st.attempt.reset();
  return s;
}

Status Run::start_attempt(StepState& st) {
  st.rec.attempts += 1;
  st.rec.status = StepStatus::running;
  st.rec.started_at = now_ms();
  st.rec.finished_at.reset();
  st.rec.retry_at.reset();
  AttemptRecord& a = st.attempt->record;
  a = AttemptRecord{};
  a.step_id = st.rec.id;
  a.number = st.rec.attempts;
  a.started_at = *st.rec.started_at;
  Store& store = engine_.store();
  if (auto s = store.insert_attempt(id(), a); !s.ok()) return s;
  if (st.carried_state) {
    // The conversation an interrupted attempt left, now this attempt's: a
    // crash before its first checkpoint resumes from it again.
    int turns = st.carried_state->value("turns", 0);
    if (auto s = store.save_checkpoint(id(), st.rec.id, a.number, turns, *st.carried_state); !s.ok()) return s;
    stored_messages_.erase({st.rec.id, a.number});  // its next checkpoint reads what this one stored
  }
  if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
  return event(event_type::step_started, st.rec.id, {{"attempt", a.number}});
}

Status Run::close_step(StepState& st, StepStatus status, const std::string& reason, const char* type) {
  st.rec.status = status;
  st.rec.reason = reason;
  st.rec.finished_at = now_ms();
  if (auto s = engine_.store().update_step(id(), st.rec); !s.ok()) return s;
  return event(type, st.rec.id, {{"reason", reason}});
}

Status Run::ensure_scratch_dir() {
  if (scratch_ready_) return {};
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir(), ec);
  if (ec) return Error{"cannot create " + scratch_dir() + ": " + ec.message()};
  std::filesystem::permissions(scratch_dir(), std::filesystem::perms::owner_all, ec);
  scratch_ready_ = true;
  return {};
}

void Run::spawn(StepState& st) {
  ++running_;
  st.attempt->start(std::exchange(st.carried_state, std::nullopt));
}

void Run::output(const std::string& step, std::string_view chunk) {
  for (auto* o : engine_.observers()) o->on_output(id(), step, chunk);
}

Status Run::record_outcome(StepState& st) {
  --running_;
  AttemptOutcome o = st.attempt->outcome();
  AttemptRecord a = std::move(st.attempt->record);
  st.attempt.reset();  // closes what it held
  if (o.outputs) st.rec.outputs = std::move(*o.outputs);
  if (o.result) st.rec.result = std::move(*o.result);
  st.rec.interruptions = 0;
  st.rec.exit_code = a.exit_code;
  st.rec.finished_at = a.finished_at;
  st.rec.reason = o.message;
  if (o.status == StepStatus::failed) {
    st.rec.failures += 1;
    const auto& policy = st.def->retry;
    bool covered = a.reason == "timeout" ? policy.on_timeout : policy.on_failure;
    if (covered && st.rec.failures < policy.attempts && !cancelling_) return schedule_retry(st, std::move(a), o.message);
  }
  st.rec.status = o.status;
  Store& store = engine_.store();
  if (auto s = store.finish_attempt(id(), a); !s.ok()) return s;
  if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
  nlohmann::json data = {{"attempt", a.number},
                         {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json()},
                         {"duration_ms", *a.finished_at - a.started_at}};
  const char* type = event_type::step_succeeded;
  if (o.status == StepStatus::succeeded) {
    data["outputs"] = st.rec.outputs;
    if (!st.rec.result.is_null()) data["result"] = st.rec.result;
  } else {
    data["reason"] = a.reason;
    data["message"] = o.message;
    type = o.status == StepStatus::cancelled ? event_type::step_cancelled : event_type::step_failed;
  }
  return event(type, st.rec.id, std::move(data));
}

Status Run::schedule_retry(StepState& st, AttemptRecord a, const std::string& message) {
  const auto& policy = st.def->retry;
  int64_t delay = policy.backoff(st.rec.failures).count();
  if (policy.jitter && delay > 1) {
    uint32_t r = 0;
    uv_random(nullptr, nullptr, &r, sizeof r, 0, nullptr);
    delay = delay / 2 + static_cast<int64_t>(r % static_cast<uint32_t>(delay / 2 + 1));
  }
  st.rec.status = StepStatus::waiting;
  st.rec.retry_at = now_ms() + delay;
  Store& store = engine_.store();
  if (auto s = store.finish_attempt(id(), a); !s.ok()) return s;
  if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
  return event(event_type::step_retrying, st.rec.id,
               {{"attempt", a.number}, {"reason", a.reason}, {"message", message}, {"retry_in_ms", delay},
                {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json()}});
}

RunStatus Run::outcome_status() const {
  if (cancelling_) return RunStatus::cancelled;
  for (auto& s : steps_)
    if ((s.rec.status == StepStatus::failed && !s.def->continue_on_error) || s.rec.status == StepStatus::cancelled) return RunStatus::failed;
  return RunStatus::succeeded;
}

Status Run::finish_run() {
  RunStatus status = outcome_status();
  int64_t at = now_ms();
  if (auto s = engine_.store().update_run(id(), status, at, ""); !s.ok()) return s;
  if (auto s = engine_.store().set_lease(id(), "", 0); !s.ok()) return s;
  return event(event_type::run_finished, "",
               {{"status", to_string(status)}, {"error", ""}, {"duration_ms", ms_since(started_)}});
}

void Run::finish_with(RunStatus status, const std::string& error) {
  finishing_ = true;
  for (auto& st : steps_)
    if (st.attempt) st.attempt->stop_services();
  *alive_ = false;  // the brokers' last callbacks find the run gone
  // What steps left there, never followed; off the loop thread.
  remove_later(loop(), {scratch_dir(), grants_root()});
  RunResult outcome{id(), status, error};
  auto done = std::move(done_);
  engine_.finished(id());
  close();
  if (done) done(outcome);
}

void Run::close() {
  closed_ = true;
  engine_.store().forget(this);
  retry_timer_.reset();
  heartbeat_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_),
           [](uv_handle_t* handle) noexcept { delete static_cast<Run*>(handle->data); });
}

}  // namespace hearth::engine
