#include "engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <set>
#include <unordered_map>
#include <fstream>
#include <sstream>

#include "engine/ids.h"
#include "engine/inputs.h"
#include "engine/leftovers.h"
#include "engine/output_file.h"
#include "workflows/loader.h"
#include "workflows/suggest.h"

extern char** environ;

namespace hearth::engine {

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::running: return "running";
    case RunStatus::succeeded: return "succeeded";
    case RunStatus::failed: return "failed";
    case RunStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

namespace {

constexpr size_t kTailBytes = 64 * 1024;  // output kept per attempt
constexpr uint64_t kHeartbeatMs = 5000;    // lease renewal; see kLeaseStaleMs

bool terminal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "skipped" || status == "cancelled";
}

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

// What the engine tracks of one step of a live run.
struct StepState {
  const workflows::Step* def = nullptr;
  StepRecord rec;
  std::vector<size_t> needs;      // indices of direct needs
  // What happened upstream of this step (all its needs, transitively):
  // computed once its needs are terminal, which they then stay.
  struct Upstream {
    bool failed = false;   // a step upstream failed (without continue-on-error)
    bool blocked = false;  // ... or was cancelled
    std::string culprit;   // the nearest such step, for messages
  };
  std::optional<Upstream> upstream;
  std::vector<size_t> reads;      // indices of the steps its expressions read
  // While an attempt is in flight:
  sandbox::ExecSpec spec;         // prepared in the pass that starts it
  sandbox::Process* process = nullptr;
  AttemptRecord attempt;
  std::string output_path;
  std::chrono::steady_clock::time_point started;
  bool exited = false;            // an outcome waits to be recorded
  sandbox::ExitInfo exit;
  std::string spawn_error;
};

}  // namespace

class Run {
 public:
  Run(Engine& engine, const workflows::Workflow& wf, RunOptions opts, std::function<void(const RunOutcome&)> done)
      : engine_(engine), wf_(wf), opts_(std::move(opts)), done_(std::move(done)) {
    uv_idle_init(engine_.loop_, &idle_);
    uv_timer_init(engine_.loop_, &retry_timer_);
    uv_timer_init(engine_.loop_, &heartbeat_);
    for (auto* h : handles()) h->data = this;
    for (size_t i = 0; i < wf_.steps.size(); ++i) {
      StepState s;
      s.def = &wf_.steps[i];
      s.rec.id = wf_.steps[i].id;
      s.rec.position = static_cast<int>(i);
      s.rec.status = "pending";
      steps_.push_back(std::move(s));
      index_[wf_.steps[i].id] = i;
    }
    for (auto& st : steps_)
      for (auto& n : st.def->needs) st.needs.push_back(index_.at(n));
    for (auto& st : steps_) st.reads = reads_of(*st.def);
    started_ = std::chrono::steady_clock::now();
  }

  const std::string& id() const { return opts_.run_id; }

  /// Records the run and schedules its first steps. On error the run is not
  /// recorded and the caller must call discard().
  Status begin(const nlohmann::json& payload) {
    payload_ = payload;
    if (auto s = render_env(); !s.ok()) return s;
    Store& store = engine_.store_;
    RunRecord r{opts_.run_id, wf_.name, wf_.path, wf_.hash, wf_.text, payload_, opts_.repo, "running",
                now_ms(),     {},       "",       lease_owner(), now_ms()};
    if (auto s = store.begin(); !s.ok()) return s;
    Status s = store.insert_run(r);
    for (auto& st : steps_)
      if (s.ok()) s = store.insert_step(id(), st.rec);
    if (s.ok()) s = event(event_type::run_started, "", {{"workflow", wf_.name}, {"workflow_hash", wf_.hash}, {"payload", payload_}});
    return commit_and_go(s);
  }

  /// Takes over a recorded run: its lease, its steps' state; marks attempts
  /// that were running as interrupted; resets what `opts` asks to re-run.
  /// On error nothing is changed and the caller must call discard().
  Status adopt(const ResumeOptions& ropts) {
    Store& store = engine_.store_;
    if (auto s = store.begin(); !s.ok()) return s;
    Status s = adopt_in_transaction(ropts);
    if (!s.ok()) {
      store.rollback();
      pending_events_.clear();
      return s;
    }
    return commit_and_go(s);
  }

  /// Frees a run whose begin() or adopt() failed.
  void discard() { close(); }

  void cancel(const std::string& reason) {
    if (cancelling_ || finishing_) return;
    cancelling_ = true;
    cancel_reason_ = reason;
    for (auto& s : steps_)
      if (s.process) s.process->kill();
    schedule();
  }

 private:
  std::vector<uv_handle_t*> handles() {
    return {reinterpret_cast<uv_handle_t*>(&idle_), reinterpret_cast<uv_handle_t*>(&retry_timer_),
            reinterpret_cast<uv_handle_t*>(&heartbeat_)};
  }

  static std::string lease_owner() {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    return std::to_string(getpid()) + "@" + host;
  }

  Status render_env() {
    nlohmann::json ctx = {{"inputs", payload_}, {"run", run_context()}};
    for (auto& v : wf_.env) {
      auto text = v.value.parsed.render(ctx);
      if (!text) return Error{wf_.path + ":" + std::to_string(v.value.location.line) + ": env '" + v.name + "': " + text.message()};
      env_[v.name] = *text;
    }
    // What every step's environment starts from: the engine's, then [env].
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) base_env_[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : env_.items()) base_env_[k] = v.get<std::string>();
    ctx_ = {{"inputs", payload_}, {"env", env_}, {"steps", nlohmann::json::object()}, {"run", run_context()}};
    return {};
  }

  // Commits what begin()/adopt() wrote, then starts heartbeats and scheduling.
  Status commit_and_go(Status s) {
    Store& store = engine_.store_;
    if (s.ok()) s = store.commit();
    if (!s.ok()) {
      store.rollback();
      pending_events_.clear();
      return s;
    }
    deliver_events();
    uv_timer_start(&heartbeat_, &Run::on_heartbeat, kHeartbeatMs, kHeartbeatMs);
    schedule();
    return {};
  }

  Status adopt_in_transaction(const ResumeOptions& ropts);
  Status interrupt(StepState& st);

  // The lease says the run is alive; a stopped heartbeat lets another
  // process take it over (lease.cpp).
  static void on_heartbeat(uv_timer_t* t) noexcept {
    auto* self = static_cast<Run*>(t->data);
    if (self->finishing_ || !self->fatal_.ok()) return;
    Store& store = self->engine_.store_;
    Status s = store.begin();
    if (s.ok()) s = store.set_lease(self->id(), lease_owner(), now_ms());
    if (s.ok()) s = store.commit();
    if (!s.ok()) {
      store.rollback();
      self->fail_fatally(s);
    }
  }

  static void on_retry_timer(uv_timer_t* t) noexcept { static_cast<Run*>(t->data)->schedule(); }

  std::vector<size_t> reads_of(const workflows::Step& def) const {
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
    return {out.begin(), out.end()};
  }

  // REQUIRES: every need of `st` is terminal. Memoized: O(needs) per step.
  const StepState::Upstream& upstream_of(StepState& st) {
    if (st.upstream) return *st.upstream;
    StepState::Upstream up;
    for (size_t n : st.needs) {
      StepState& need = steps_[n];
      bool failed = need.rec.status == "failed" && !need.def->continue_on_error;
      bool blocked = failed || need.rec.status == "cancelled";
      const auto& above = upstream_of(need);
      if ((blocked || above.blocked) && up.culprit.empty()) up.culprit = blocked ? need.rec.id : above.culprit;
      up.failed = up.failed || failed || above.failed;
      up.blocked = up.blocked || blocked || above.blocked;
    }
    st.upstream = up;
    return *st.upstream;
  }

  nlohmann::json run_context() const { return {{"id", id()}, {"workflow", wf_.name}}; }

  // Schedules a pass for this loop iteration (an idle handle keeps the poll
  // from blocking), so every exit seen in one iteration shares one commit.
  void schedule() {
    if (pass_scheduled_ || closed_) return;
    pass_scheduled_ = true;
    uv_idle_start(&idle_, &Run::on_idle);
  }

  static void on_idle(uv_idle_t* h) noexcept {
    auto* self = static_cast<Run*>(h->data);
    uv_idle_stop(h);
    self->pass_scheduled_ = false;
    self->pass();
  }

  Status event(const char* type, const std::string& step, nlohmann::json data) {
    EventRecord e{id(), ++seq_, now_ms(), type, step, std::move(data)};
    Status s = engine_.store_.insert_event(e);
    pending_events_.push_back(std::move(e));
    return s;
  }

  void deliver_events() {
    auto events = std::move(pending_events_);
    pending_events_.clear();
    for (auto& e : events)
      for (auto* o : engine_.observers_) o->on_event(e);
  }

  // One scheduling pass: record outcomes, decide ready steps, finish the run
  // if nothing is left; commit; then deliver events and spawn.
  void pass() {
    if (finishing_) return;
    if (!fatal_.ok()) return finish_after_fatal();
    Store& store = engine_.store_;
    std::vector<size_t> to_spawn;
    bool run_done = false;
    Status s = store.begin();
    for (size_t i = 0; s.ok() && i < steps_.size(); ++i)
      if (steps_[i].exited) s = record_outcome(steps_[i]);
    if (s.ok()) s = decide_steps(to_spawn);
    if (s.ok() && running_ == 0 && to_spawn.empty() && all_terminal()) {
      s = finish_run();
      run_done = s.ok();
    }
    if (s.ok()) s = store.commit();
    // ---- after this line the pass's changes are durable ----
    if (!s.ok()) {
      store.rollback();
      return fail_fatally(s);
    }
    deliver_events();
    for (size_t i : to_spawn) spawn(steps_[i]);
    if (run_done) finish_with(outcome_status(), "");
    else arm_retry_timer();
  }

  // The store failed: stop everything. The run stays recorded as it was at
  // the last commit, so it can be resumed once the store is healthy.
  void fail_fatally(const Status& s) {
    if (!fatal_.ok()) return;
    pending_events_.clear();
    fatal_ = s;
    for (auto& st : steps_)
      if (st.process) st.process->kill();
    finish_after_fatal();
  }

  // Wakes the scheduler when the earliest waiting retry is due.
  void arm_retry_timer() {
    std::optional<int64_t> earliest;
    for (auto& st : steps_)
      if (st.rec.status == "waiting" && st.rec.retry_at && (!earliest || *st.rec.retry_at < *earliest))
        earliest = st.rec.retry_at;
    if (!earliest) {
      uv_timer_stop(&retry_timer_);
      return;
    }
    int64_t wait = std::max<int64_t>(0, *earliest - now_ms());
    uv_timer_start(&retry_timer_, &Run::on_retry_timer, static_cast<uint64_t>(wait), 0);
  }

  bool all_terminal() const {
    for (auto& s : steps_)
      if (!terminal(s.rec.status)) return false;
    return true;
  }

  Status decide_steps(std::vector<size_t>& to_spawn) {
    if (cancelling_ && !cancel_recorded_) {
      cancel_recorded_ = true;
      if (auto s = event(event_type::run_cancelling, "", {{"reason", cancel_reason_}}); !s.ok()) return s;
    }
    int jobs = opts_.jobs > 0 ? opts_.jobs : static_cast<int>(uv_available_parallelism());
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < steps_.size(); ++i) {
        StepState& st = steps_[i];
        bool waiting = st.rec.status == "waiting";
        if (st.rec.status != "pending" && !waiting) continue;
        if (cancelling_) {
          if (auto s = close_step(st, "cancelled", cancel_reason_, event_type::step_cancelled); !s.ok()) return s;
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
          Status prepared = prepare_spec(st, context_for(st));
          if (!prepared.ok()) {
            if (auto s = close_step(st, "failed", prepared.message(), event_type::step_failed); !s.ok()) return s;
          } else {
            if (auto s = start_attempt(st); !s.ok()) return s;
            to_spawn.push_back(i);
          }
          changed = true;
          continue;
        }
        auto decision = decide(st);
        if (!decision.ok()) {
          if (auto s = close_step(st, "failed", decision.message(), event_type::step_failed); !s.ok()) return s;
        } else if (!decision->empty()) {
          if (auto s = close_step(st, "skipped", *decision, event_type::step_skipped); !s.ok()) return s;
        } else {
          if (auto s = start_attempt(st); !s.ok()) return s;
          to_spawn.push_back(i);
        }
        changed = true;
      }
    }
    return {};
  }

  // Empty string: run it. Otherwise why it is skipped. Error: the `if` or an
  // interpolation could not be evaluated, or the step's spec could not be built.
  Result<std::string> decide(StepState& st) {
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
    if (auto s = prepare_spec(st, ctx); !s.ok()) return s.error();
    return std::string();
  }

  // The expression context for `st`: the run-wide parts built once, plus
  // only the steps its expressions read (the loader checked they are needs).
  nlohmann::json& context_for(const StepState& st) {
    nlohmann::json steps = nlohmann::json::object();
    for (size_t a : st.reads) {
      const StepRecord& r = steps_[a].rec;
      steps[r.id] = {{"status", r.status}, {"outputs", r.outputs}, {"exit-code", r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json()}};
    }
    ctx_["steps"] = std::move(steps);
    ctx_["env"] = env_;
    return ctx_;
  }

  Status prepare_spec(StepState& st, nlohmann::json& ctx) {
    const workflows::Step& def = *st.def;
    auto where = [&](const std::string& what) { return "step '" + def.id + "': " + what + ": "; };
    std::map<std::string, std::string> env = base_env_;
    for (auto& v : def.env) {
      auto text = v.value.parsed.render(ctx);
      if (!text) return Error{where("env '" + v.name + "'") + text.message()};
      env[v.name] = *text;
      ctx["env"][v.name] = *text;
    }
    for (auto& [var, expression] : def.run_slots) {
      auto value = expression.evaluate(ctx);
      if (!value) return Error{where("run") + "${{ " + expression.text() + " }}: " + value.message()};
      env[var] = workflows::expr::to_text(*value);
    }
    std::filesystem::path cwd = opts_.repo;
    if (def.working_directory) {
      auto dir = def.working_directory->parsed.render(ctx);
      if (!dir) return Error{where("working-directory") + dir.message()};
      cwd = cwd / *dir;
      std::error_code ec;
      if (!std::filesystem::is_directory(cwd, ec))
        return Error{where("working-directory") + cwd.string() + " is not a directory"};
    }
    st.output_path = scratch_dir() + "/" + def.id + "." + std::to_string(st.rec.attempts + 1) + ".out";
    env["HEARTH_OUTPUT"] = st.output_path;
    env["HEARTH_RUN_ID"] = id();
    env["HEARTH_STEP_ID"] = def.id;
    env["HEARTH_WORKSPACE"] = opts_.repo;
    st.spec = {};
    st.spec.argv = {"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", def.run};
    for (auto& [k, v] : env) st.spec.env.push_back(k + "=" + v);
    st.spec.cwd = cwd.string();
    st.spec.timeout = def.timeout;
    st.spec.kill_grace = opts_.kill_grace;
    return {};
  }

  std::string scratch_dir() const { return opts_.scratch_dir + "/" + id(); }

  Status start_attempt(StepState& st) {
    st.rec.attempts += 1;
    st.rec.status = "running";
    st.rec.started_at = now_ms();
    st.rec.finished_at.reset();
    st.rec.retry_at.reset();
    st.attempt = AttemptRecord{};
    st.attempt.step_id = st.rec.id;
    st.attempt.number = st.rec.attempts;
    st.attempt.started_at = *st.rec.started_at;
    Store& store = engine_.store_;
    if (auto s = store.insert_attempt(id(), st.attempt); !s.ok()) return s;
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    return event(event_type::step_started, st.rec.id, {{"attempt", st.attempt.number}});
  }

  Status close_step(StepState& st, const char* status, const std::string& reason, const char* type) {
    st.rec.status = status;
    st.rec.reason = reason;
    st.rec.finished_at = now_ms();
    if (auto s = engine_.store_.update_step(id(), st.rec); !s.ok()) return s;
    return event(type, st.rec.id, {{"reason", reason}});
  }

  void spawn(StepState& st) {
    // The step creates $HEARTH_OUTPUT if it has outputs; the directory is
    // made once per run.
    if (!scratch_ready_) {
      std::error_code ec;
      std::filesystem::create_directories(scratch_dir(), ec);
      scratch_ready_ = true;
    }
    st.started = std::chrono::steady_clock::now();
    sandbox::ExecCallbacks cb;
    StepState* sp = &st;  // steps_ never reallocates after begin()
    cb.on_output = [this, sp](std::string_view chunk) { on_output(*sp, chunk); };
    cb.on_exit = [this, sp](const sandbox::ExitInfo& info) {
      sp->process = nullptr;
      sp->exit = info;
      sp->exited = true;
      schedule();
    };
    ++running_;
    auto p = engine_.sandbox_.spawn(engine_.loop_, st.spec, std::move(cb));
    if (!p) {
      st.spawn_error = p.message();
      st.exited = true;
      schedule();
      return;
    }
    st.process = *p;
    if (cancelling_) st.process->kill();
  }

  void on_output(StepState& st, std::string_view chunk) {
    st.attempt.output_bytes += static_cast<int64_t>(chunk.size());
    st.attempt.output_tail.append(chunk);
    if (st.attempt.output_tail.size() > 2 * kTailBytes)
      st.attempt.output_tail.erase(0, st.attempt.output_tail.size() - kTailBytes);
    for (auto* o : engine_.observers_) o->on_output(id(), st.rec.id, chunk);
  }

  Status record_outcome(StepState& st) {
    st.exited = false;
    --running_;
    AttemptRecord& a = st.attempt;
    if (a.output_tail.size() > kTailBytes) a.output_tail.erase(0, a.output_tail.size() - kTailBytes);
    a.finished_at = now_ms();
    std::string status = "failed", message;
    if (!st.spawn_error.empty()) {
      a.reason = "spawn-error";
      message = st.spawn_error;
    } else {
      a.exit_code = st.exit.exit_status;
      a.signal = st.exit.term_signal;
      if (st.exit.killed) {
        a.reason = "cancelled";
        status = "cancelled";
        message = cancel_reason_;
      } else if (st.exit.timed_out) {
        a.reason = "timeout";
        message = "timed out after " + std::to_string(st.def->timeout->count()) + "ms";
      } else {
        a.reason = "exited";
        auto outputs = read_outputs(st);
        if (!outputs) {
          a.reason = "output-error";
          message = outputs.message();
        } else {
          st.rec.outputs = *outputs;
          if (st.exit.exit_status == 0) status = "succeeded";
          else message = "exited with code " + std::to_string(st.exit.exit_status);
        }
      }
    }
    std::error_code ec;
    std::filesystem::remove(st.output_path, ec);
    st.rec.interruptions = 0;
    st.rec.exit_code = a.exit_code;
    st.rec.finished_at = a.finished_at;
    st.rec.reason = message;
    if (status == "failed") {
      st.rec.failures += 1;
      const auto& policy = st.def->retry;
      bool covered = a.reason == "timeout" ? policy.on_timeout : policy.on_failure;
      if (covered && st.rec.failures < policy.attempts && !cancelling_) return schedule_retry(st, message);
    }
    st.rec.status = status;
    Store& store = engine_.store_;
    if (auto s = store.finish_attempt(id(), a); !s.ok()) return s;
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    nlohmann::json data = {{"attempt", a.number},
                           {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json()},
                           {"duration_ms", *a.finished_at - a.started_at}};
    const char* type = event_type::step_succeeded;
    if (status == "succeeded") data["outputs"] = st.rec.outputs;
    else {
      data["reason"] = a.reason;
      data["message"] = message;
      type = status == "cancelled" ? event_type::step_cancelled : event_type::step_failed;
    }
    st.attempt = AttemptRecord{};
    return event(type, st.rec.id, std::move(data));
  }

  // Records the failed attempt and when the next one starts. The wait is
  // durable: retry_at is stored, so a resumed run waits out the remainder.
  Status schedule_retry(StepState& st, const std::string& message) {
    const auto& policy = st.def->retry;
    int64_t delay = policy.backoff(st.rec.failures).count();
    if (policy.jitter && delay > 1) {
      uint32_t r = 0;
      uv_random(nullptr, nullptr, &r, sizeof r, 0, nullptr);
      delay = delay / 2 + static_cast<int64_t>(r % static_cast<uint32_t>(delay / 2 + 1));
    }
    AttemptRecord a = std::move(st.attempt);
    st.attempt = AttemptRecord{};
    st.rec.status = "waiting";
    st.rec.retry_at = now_ms() + delay;
    Store& store = engine_.store_;
    if (auto s = store.finish_attempt(id(), a); !s.ok()) return s;
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    return event(event_type::step_retrying, st.rec.id,
                 {{"attempt", a.number}, {"reason", a.reason}, {"message", message}, {"retry_in_ms", delay},
                  {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json()}});
  }

  Result<nlohmann::json> read_outputs(const StepState& st) {
    std::error_code ec;
    auto size = std::filesystem::file_size(st.output_path, ec);
    if (ec) return nlohmann::json::object();  // the step removed it: no outputs
    if (size > kMaxOutputFileBytes)
      return Error{"$HEARTH_OUTPUT is " + std::to_string(size) + " bytes, more than the " +
                   std::to_string(kMaxOutputFileBytes) + " allowed"};
    std::ifstream in(st.output_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = parse_output_file(ss.str());
    if (!parsed) return Error{"$HEARTH_OUTPUT: " + parsed.message()};
    nlohmann::json out = nlohmann::json::object();
    for (auto& [k, v] : *parsed) out[k] = v;
    return out;
  }

  RunStatus outcome_status() const {
    if (cancelling_) return RunStatus::cancelled;
    for (auto& s : steps_)
      if ((s.rec.status == "failed" && !s.def->continue_on_error) || s.rec.status == "cancelled") return RunStatus::failed;
    return RunStatus::succeeded;
  }

  Status finish_run() {
    RunStatus status = outcome_status();
    int64_t at = now_ms();
    if (auto s = engine_.store_.update_run(id(), to_string(status), at, ""); !s.ok()) return s;
    if (auto s = engine_.store_.set_lease(id(), "", 0); !s.ok()) return s;
    return event(event_type::run_finished, "",
                 {{"status", to_string(status)}, {"error", ""}, {"duration_ms", ms_since(started_)}});
  }

  // The store failed: nothing more can be recorded. Wait for running
  // processes (already killed) to exit, then report the failure.
  void finish_after_fatal() {
    for (auto& s : steps_)
      if (s.process) return;  // their exits schedule another pass
    finish_with(RunStatus::failed, fatal_.message());
  }

  void finish_with(RunStatus status, const std::string& error) {
    finishing_ = true;
    std::error_code ec;
    std::filesystem::remove_all(scratch_dir(), ec);
    RunOutcome outcome{id(), status, error};
    auto done = std::move(done_);
    engine_.finished(this);
    close();
    if (done) done(outcome);
  }

  void close() {
    closed_ = true;
    for (auto* h : handles()) {
      uv_close(h, [](uv_handle_t* handle) noexcept {
        auto* self = static_cast<Run*>(handle->data);
        if (++self->closed_handles_ == 3) delete self;
      });
    }
  }

  Engine& engine_;
  workflows::Workflow wf_;  // the run's own copy; StepState::def points into it
  RunOptions opts_;
  std::function<void(const RunOutcome&)> done_;
  nlohmann::json payload_;
  nlohmann::json env_ = nlohmann::json::object();  // the workflow's env, rendered at start
  std::map<std::string, std::string> base_env_;     // the engine's environment plus env_
  nlohmann::json ctx_;                              // inputs, env, run; steps filled per step
  std::vector<StepState> steps_;
  std::unordered_map<std::string, size_t> index_;  // step id -> position in steps_
  std::vector<EventRecord> pending_events_;  // written, delivered after commit
  int64_t seq_ = 0;
  int running_ = 0;
  bool cancelling_ = false, cancel_recorded_ = false, finishing_ = false;
  bool pass_scheduled_ = false, closed_ = false, scratch_ready_ = false;
  std::string cancel_reason_;
  Status fatal_;
  std::chrono::steady_clock::time_point started_;
  uv_idle_t idle_{};            // schedules passes
  uv_timer_t retry_timer_{};    // wakes waiting retries
  uv_timer_t heartbeat_{};      // renews the lease
  int closed_handles_ = 0;      // the Run deletes itself when all three have closed
  friend class Engine;
};

namespace {

std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

// Whether the engine named by a run's lease ("pid@host") may still be running it.
bool lease_alive(const RunRecord& run) {
  if (run.lease_owner.empty()) return false;
  if (now_ms() - run.lease_heartbeat >= kLeaseStaleMs) return false;
  auto at = run.lease_owner.find('@');
  if (at == std::string::npos || run.lease_owner.substr(at + 1) != host_name()) return true;  // fresh, elsewhere
  pid_t pid = static_cast<pid_t>(std::atoi(run.lease_owner.substr(0, at).c_str()));
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

std::set<std::string> dependents_closure(const workflows::Workflow& wf, const std::vector<std::string>& from) {
  std::set<std::string> out(from.begin(), from.end());
  for (bool grew = true; grew;) {
    grew = false;
    for (auto& s : wf.steps) {
      if (out.count(s.id)) continue;
      for (auto& n : s.needs)
        if (out.count(n)) {
          out.insert(s.id);
          grew = true;
          break;
        }
    }
  }
  return out;
}

}  // namespace

Status Run::adopt_in_transaction(const ResumeOptions& ropts) {
  Store& store = engine_.store_;
  auto run = store.load_run(id());
  if (!run) return run.error();
  if (run->lease_owner != lease_owner() && lease_alive(*run)) {
    return Error{"run " + id() + " is being run by " + run->lease_owner + " (last heartbeat " +
                 std::to_string((now_ms() - run->lease_heartbeat) / 1000) + "s ago); wait for it, or stop it first"};
  }
  auto records = store.load_steps(id());
  if (!records) return records.error();
  auto seq = store.last_event_seq(id());
  if (!seq) return seq.error();
  seq_ = *seq;
  payload_ = run->payload;
  if (auto s = render_env(); !s.ok()) return s;

  for (auto& f : ropts.from) {
    if (!index_.count(f)) {
      std::vector<std::string> ids;
      for (auto& st : wf_.steps) ids.push_back(st.id);
      return Error{"--from: no step '" + f + "' in workflow " + wf_.name + workflows::did_you_mean(f, ids)};
    }
  }
  std::set<std::string> rerun = dependents_closure(wf_, ropts.from);
  bool rerun_unsuccessful = run->status == "failed" || run->status == "cancelled";
  auto keeps_outcome = [&](const StepRecord& r) {
    if (rerun.count(r.id)) return false;
    if (r.status == "succeeded") return true;
    return !rerun_unsuccessful && terminal(r.status);
  };

  std::optional<workflows::Workflow> snapshot;
  if (ropts.current) {
    auto loaded = workflows::load_workflow_text(run->workflow_text, run->workflow_path);
    if (!loaded.ok()) return Error{"the run's workflow snapshot no longer loads: " + loaded.errors.front()};
    snapshot = std::move(*loaded.workflow);
  }
  for (auto& r : *records) {
    auto found = index_.find(r.id);
    if (found == index_.end()) {
      return Error{"cannot resume run " + id() + " with the current workflow: step '" + r.id +
                   "' is recorded but no longer in " + wf_.path + "; resume without --use-current to keep the snapshot"};
    }
    StepState& st = steps_[found->second];
    if (snapshot && keeps_outcome(r)) {
      int j = snapshot->step_index(r.id);
      if (j < 0 || snapshot->steps[static_cast<size_t>(j)].definition_hash != st.def->definition_hash) {
        return Error{"cannot resume run " + id() + " with the current workflow: step '" + r.id + "' (" + r.status +
                     ") is defined differently than when it ran; resume without --use-current to keep the snapshot, "
                     "or re-run it with --from " + r.id};
      }
    }
    st.rec = r;
    st.rec.position = static_cast<int>(found->second);
  }
  // Decide first, so that run.resumed (which lists the decisions) comes
  // before the events of the steps it affects.
  std::vector<std::string> reset, interrupted, added;
  std::set<std::string> recorded_ids;
  for (auto& r : *records) recorded_ids.insert(r.id);
  for (auto& st : steps_) {
    bool recorded = recorded_ids.count(st.rec.id) > 0;
    if (!recorded) added.push_back(st.rec.id);  // new in the current workflow
    else if (st.rec.status == "running") interrupted.push_back(st.rec.id);
    else if (!keeps_outcome(st.rec) && st.rec.status != "pending" && st.rec.status != "waiting") reset.push_back(st.rec.id);
  }
  if (auto s = event(event_type::run_resumed, "",
                     {{"workflow_hash", wf_.hash}, {"from", ropts.from}, {"reset", reset}, {"interrupted", interrupted}});
      !s.ok())
    return s;
  auto listed = [](const std::vector<std::string>& v, const std::string& id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  for (auto& st : steps_) {
    Status s;
    if (listed(added, st.rec.id)) {
      s = store.insert_step(id(), st.rec);
    } else if (listed(interrupted, st.rec.id)) {
      s = interrupt(st);
    } else if (listed(reset, st.rec.id)) {
      st.rec = StepRecord{st.rec.id, st.rec.position, "pending", st.rec.attempts, {}, {}, {}, nlohmann::json::object(), "", {}, 0, 0, {}};
      s = store.update_step(id(), st.rec);
    }
    if (!s.ok()) return s;
  }
  if (ropts.current) {
    if (auto s = store.update_snapshot(id(), wf_.path, wf_.hash, wf_.text); !s.ok()) return s;
  }
  if (auto s = store.update_run(id(), "running", std::nullopt, ""); !s.ok()) return s;
  return store.set_lease(id(), lease_owner(), now_ms());
}

Status Run::interrupt(StepState& st) {
  Store& store = engine_.store_;
  // Its processes may have outlived the engine: end them before anything
  // (this attempt's record, or a new attempt) can happen.
  int leftovers = kill_leftovers(id(), st.rec.id);
  // The attempt that was running: recorded as started, never finished.
  AttemptRecord last;
  if (!st.rec.attempt_list.empty()) last = st.rec.attempt_list.back();
  last.step_id = st.rec.id;
  last.number = st.rec.attempts;
  last.reason = "interrupted";
  last.finished_at = now_ms();
  st.rec.attempt_list.clear();
  if (auto s = store.finish_attempt(id(), last); !s.ok()) return s;
  st.rec.interruptions += 1;
  st.rec.finished_at = last.finished_at;
  if (st.def->retry.on_interrupted && st.rec.interruptions < workflows::kMaxInterruptions) {
    st.rec.status = "pending";
    st.rec.reason = "";
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    return event(event_type::step_interrupted, st.rec.id, {{"attempt", last.number}, {"killed_leftovers", leftovers}});
  }
  st.rec.status = "failed";
  st.rec.reason = st.def->retry.on_interrupted
                      ? "interrupted " + std::to_string(st.rec.interruptions) + " times in a row: the engine stopped while it ran"
                      : "interrupted: the engine stopped while it ran, and its retry policy excludes \"interrupted\"";
  if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
  return event(event_type::step_failed, st.rec.id, {{"attempt", last.number}, {"reason", "interrupted"}, {"message", st.rec.reason}});
}

Engine::Engine(uv_loop_t* loop, Store& store, sandbox::Sandbox& sandbox)
    : loop_(loop), store_(store), sandbox_(sandbox) {}

Engine::~Engine() = default;

void Engine::add_observer(Observer* observer) { observers_.push_back(observer); }

Result<std::string> Engine::start(const workflows::Workflow& workflow, RunOptions options,
                                  std::function<void(const RunOutcome&)> on_finished) {
  if (options.run_id.empty()) options.run_id = new_run_id();
  if (!valid_run_id(options.run_id))
    return Error{"invalid run id '" + options.run_id + "': use 1-128 letters, digits, '.', '_' or '-'"};
  auto exists = store_.run_exists(options.run_id);
  if (!exists) return exists.error();
  if (*exists) return Error{"a run with id '" + options.run_id + "' already exists"};
  if (options.repo.empty()) options.repo = std::filesystem::current_path().string();
  if (options.scratch_dir.empty())
    options.scratch_dir = (std::filesystem::path(store_.path()).parent_path() / "tmp").string();
  if (auto s = check_inputs_schema(workflow.inputs); !s.ok()) return Error{workflow.path + ": " + s.message()};
  auto payload = prepare_payload(workflow.inputs, options.payload);
  if (!payload) return payload.error();
  auto* run = new Run(*this, workflow, options, std::move(on_finished));
  if (auto s = run->begin(*payload); !s.ok()) {
    run->discard();
    return s.error();
  }
  runs_[run->id()] = run;
  return run->id();
}

Result<std::string> Engine::resume(const std::string& run_id, ResumeOptions ropts,
                                   std::function<void(const RunOutcome&)> on_finished) {
  if (runs_.count(run_id)) return Error{"run " + run_id + " is already running in this engine"};
  auto run = store_.load_run(run_id);
  if (!run) return run.error();
  if (run->status == "succeeded" && ropts.from.empty())
    return Error{"run " + run_id + " already succeeded: nothing to resume (re-run steps with --from STEP)"};
  workflows::Workflow wf;
  if (ropts.current) {
    wf = *ropts.current;
  } else {
    auto loaded = workflows::load_workflow_text(run->workflow_text, run->workflow_path);
    if (!loaded.ok()) return Error{"the workflow snapshot of run " + run_id + " does not load: " + loaded.errors.front()};
    wf = std::move(*loaded.workflow);
  }
  RunOptions opts;
  opts.run_id = run_id;
  opts.repo = run->repo;
  opts.jobs = ropts.jobs;
  opts.kill_grace = ropts.kill_grace;
  opts.scratch_dir = ropts.scratch_dir.empty()
                         ? (std::filesystem::path(store_.path()).parent_path() / "tmp").string()
                         : ropts.scratch_dir;
  auto* r = new Run(*this, wf, opts, std::move(on_finished));
  if (auto s = r->adopt(ropts); !s.ok()) {
    r->discard();
    return s.error();
  }
  runs_[run_id] = r;
  return run_id;
}

bool Engine::cancel(const std::string& run_id, const std::string& reason) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return false;
  it->second->cancel(reason);
  return true;
}

void Engine::cancel_all(const std::string& reason) {
  for (auto& [id, run] : runs_) run->cancel(reason);
}

void Engine::finished(Run* run) { runs_.erase(run->id()); }

}  // namespace hearth::engine
