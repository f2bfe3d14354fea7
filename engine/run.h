// Private to engine/: one live run. A Run owns a libuv handle (the pass
// scheduler) and two timers of the engine's clock (retries, the lease
// heartbeat), and deletes itself once the handle has closed (close()). The
// Engine holds a non-owning pointer from start() or resume() until
// finished(). A Run schedules: its passes record the outcomes of ended
// attempts, decide ready steps and finish the run (run.cpp); each step's
// attempt is an Attempt (attempt.h), which the Run prepares, records as
// started, starts, and records once it has ended.
// Taking over a recorded run is in resume.cpp.
#pragma once

#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands/broker.h"
#include "commands/redact.h"
#include "engine/attempt.h"
#include "engine/engine.h"
#include "engine/events.h"
#include "engine/grants.h"
#include "sandbox/workspace.h"

namespace hearth::engine {

inline constexpr uint64_t kHeartbeatMs = 5000;    // lease renewal; see kLeaseStaleMs

inline int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

class CompiledWorkflows;

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
  // The attempt being prepared, running or waiting for its outcome to be
  // recorded (attempt.h); null between attempts.
  std::unique_ptr<Attempt> attempt;
  std::optional<nlohmann::json> carried_state;  // resume: the conversation the next attempt continues
};


class Run {
 public:
  Run(Engine& engine, workflows::Workflow wf, StartOptions opts, std::function<void(const RunResult&)> done)
      : engine_(engine), wf_(std::move(wf)), opts_(std::move(opts)), done_(std::move(done)) {
    uv_idle_init(engine_.loop(), &idle_);
    idle_.data = this;
    retry_timer_ = engine_.clock().timer([this] { schedule(); });
    heartbeat_ = engine_.clock().timer([this] { heartbeat(); });
    steps_.reserve(wf_.steps.size());
    for (size_t i = 0; i < wf_.steps.size(); ++i) {
      StepState s;
      s.def = &wf_.steps[i];
      s.rec.id = wf_.steps[i].id;
      s.rec.position = static_cast<int>(i);
      s.rec.status = StepStatus::pending;
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
  Status begin(const nlohmann::json& payload);

  /// Takes over a recorded run: its lease, its steps' state; marks attempts
  /// that were running as interrupted; re-runs the steps of `from` and
  /// their dependents. `replaced`: the run's workflow is not its snapshot
  /// (resume with the current definition), which is checked and recorded.
  /// On error nothing is changed and the caller must call discard().
  Status adopt(const std::vector<std::string>& from, bool replaced);

  /// Frees a run whose begin() or adopt() failed.
  void discard() { close(); }

  void cancel(const std::string& reason);

  // ---- what an attempt uses of its run (attempt.h) ----
  uv_loop_t* loop() const { return engine_.loop(); }
  Store& store() const { return engine_.store(); }
  util::Clock& clock() const { return engine_.clock(); }
  // The time this run records and compares (retry_at, leases, events),
  // from the engine's clock; it hides the store's now_ms() in Run's code.
  int64_t now_ms() const { return engine_.clock().now_ms(); }
  sandbox::Sandbox& sandbox() const { return *sandbox_; }
  bool isolated() const { return sandbox_ && sandbox_->kind() != "local"; }
  const workflows::Workflow& workflow() const { return wf_; }
  /// Resolved: run_id, repo and jobs are set.
  const StartOptions& options() const { return opts_; }
  std::chrono::milliseconds kill_grace() const { return engine_.defaults().kill_grace; }
  // Prepares the workspace the first time a step needs it (a checkout is
  // made then; a resumed run finds the one made before).
  Status ensure_workspace();
  /// REQUIRES: ensure_workspace() succeeded.
  const sandbox::Workspace& workspace() const { return *workspace_; }
  // The engine's state directory relative to the workspace, when it lives
  // inside it (<repo>/.hearth with workspace = "repo"): hidden from steps.
  std::optional<std::string> hidden_state_dir() const;
  std::string scratch_dir() const { return engine_.scratch_root() + "/" + id(); }
  // The run's scratch directory, made once per run, private to the engine's user.
  Status ensure_scratch_dir();
  std::string grants_root() const;
  const std::string& shim_path() { return engine_.shim_path(); }
  const CommandHandler* host_command(const std::string& name) const { return engine_.host_command(name); }
  const RegisteredTool* host_tool(const std::string& name) const { return engine_.host_tool(name); }
  // The workflow's declared secrets, read when the run started or resumed.
  const SecretValues& secret_values() const { return secret_values_; }
  // Every secret of the workflow's commands and proxies.
  const std::shared_ptr<const commands::SecretSet>& secrets() const { return secrets_; }
  std::string redact(std::string text) const;
  // The model client of an agent step; clients outlive the attempts.
  Result<model::Client*> client_for(const workflows::AgentStep& a);
  // False once the run has finished: what an attempt's broker, proxies or
  // host tools report later is dropped.
  std::weak_ptr<bool> alive() const { return alive_; }
  bool cancelling() const { return cancelling_; }
  const std::string& cancel_reason() const { return cancel_reason_; }
  // One write outside a scheduling pass, committed at once.
  Status commit_now(const std::function<Status()>& write);
  Status event(const char* type, const std::string& step, nlohmann::json data);
  // Live output of a step, already redacted, to the observers.
  void output(const std::string& step, std::string_view chunk);
  // An attempt has ended: its outcome is recorded in the next pass.
  void attempt_ended() { schedule(); }
  // Written as they happen, between passes (run_journal.cpp).
  Status journal_call_started(const std::string& step, int attempt, const commands::Invocation& inv);
  /// Calls `then` once everything the run has committed is durable (Store::when_durable).
  void when_durable(std::function<void(const Status&)> then);
  void journal_call_finished(const std::string& step, int attempt, const commands::Invocation& inv);
  void record_proxy_event(const std::string& step, int attempt, const proxy::ProxyEvent& e);
  Status save_checkpoint(const std::string& step, int attempt, const nlohmann::json& state);

 private:
  Status render_env();

  // The backend for this run's [sandbox] kind; error when the engine has none.
  Status choose_sandbox();
  // The host directory the run's commands see at /workspace.
  std::string workspace_dir() const;
  std::map<std::string, std::unique_ptr<model::Client>> clients_;  // by model spec; outlive the harnesses
  SecretValues secret_values_;  // the workflow's declared secrets, read when the run started or resumed
  std::shared_ptr<const commands::SecretSet> secrets_;  // every secret of the workflow's commands and proxies
  // The environment the model's client reads (model::make_client), read
  // with the declared secrets: a key changed or removed later changes nothing.
  static constexpr const char* kModelEnv[] = {"HEARTH_MODEL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                                              "OPENAI_API_KEY", "OPENAI_BASE_URL"};
  std::map<std::string, std::string> model_env_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<sandbox::Workspace> workspace_;

  // `snapshots` is set when the run's workflow replaces its snapshot
  // (--use-current): the snapshot is read from there to compare steps.
  Status adopt_in_transaction(const std::vector<std::string>& from, CompiledWorkflows* snapshots);
  Status interrupt(StepState& st);

  // The lease says the run is alive; a stopped heartbeat lets another
  // process take it over (resume.cpp).
  void heartbeat();
  /// How often the lease is renewed: a sixth of the engine's lease timeout
  /// (kHeartbeatMs at the default), so a few lost renewals never lose it.
  std::chrono::milliseconds heartbeat_interval() const {
    return std::max(std::chrono::milliseconds(100), engine_.defaults().lease_timeout / 6);
  }

  std::vector<size_t> reads_of(const workflows::Step& def) const;

  // REQUIRES: every need of `st` is terminal. Memoized: O(needs) per step.
  const StepState::Upstream& upstream_of(StepState& st);

  nlohmann::json run_context() const { return {{"id", id()}, {"workflow", wf_.name}}; }

  // Schedules a pass for this loop iteration (an idle handle keeps the poll
  // from blocking), so every exit seen in one iteration shares one commit.
  void schedule() {
    if (pass_scheduled_ || closed_) return;
    pass_scheduled_ = true;
    uv_idle_start(&idle_, &Run::on_idle);
  }

  static void on_idle(uv_idle_t* h) noexcept;

  // Starting a process blocks the loop (≈0.7 ms each here). A pass that
  // starts many steps spawns for at most this long per loop iteration and
  // leaves the rest for the next ones, so a host sharing the loop (libhearth)
  // keeps its timers and sockets on time. Returns true when some are left.
  static constexpr uint64_t kSpawnBudgetNs = 1'000'000;
  bool spawn_some();
  std::deque<size_t> spawn_queue_;  // steps recorded as started, not yet spawned

  void deliver_events(std::vector<EventRecord> events);
  void after_durable(std::function<void(const Status&)> then);

  // One scheduling pass: record outcomes, decide ready steps, finish the run
  // if nothing is left; commit; then deliver events and spawn.
  void pass();
  // What a pass decided, acted on once its commit is durable.
  struct PassOutcome {
    std::vector<size_t> to_spawn;  // steps recorded as started
    bool run_done = false;         // the run's end was recorded
  };
  // Commits what begin() or adopt() wrote (`s`: how the writing went) and
  // starts the heartbeats. Once durable: the steps of `first` (the pass
  // adopt() ran in its transaction) start, or without it, a pass runs.
  Status commit_and_go(Status s, std::optional<PassOutcome> first = std::nullopt);
  // The pass's writes, inside the store's open transaction (a pass's own, or
  // the takeover's in adopt()).
  Status pass_in_transaction(PassOutcome& out);
  // After the commit: when durable, deliver the events and spawn, or finish.
  void act_when_durable(PassOutcome out);

  // The store failed: stop everything. The run stays recorded as it was at
  // the last commit, so it can be resumed once the store is healthy.
  void fail_fatally(const Status& s);

  // Wakes the scheduler when the earliest waiting retry is due.
  void arm_retry_timer();

  bool all_terminal() const {
    for (auto& s : steps_)
      if (!terminal(s.rec.status)) return false;
    return true;
  }

  Status decide_steps(std::vector<size_t>& to_spawn);

  // Empty string: run it. Otherwise why it is skipped. Error: the `if` or an
  // interpolation could not be evaluated, or the step's spec could not be built.
  Result<std::string> decide(StepState& st);

  // The expression context for `st`: the run-wide parts built once, plus
  // only the steps its expressions read (the loader checked they are needs).
  nlohmann::json& context_for(const StepState& st);

  // A new attempt of `st`, prepared (attempt.h); the step fails when it
  // cannot be.
  Status prepare_attempt(StepState& st, nlohmann::json& ctx);

  // Records the prepared attempt as started (committed before it starts).
  Status start_attempt(StepState& st);

  Status close_step(StepState& st, StepStatus status, const std::string& reason, const char* type);

  // Starts an attempt whose start has committed.
  void spawn(StepState& st);

  // Records an ended attempt's outcome; a failure covered by the retry
  // policy waits for the next attempt instead.
  Status record_outcome(StepState& st);

  // Records the failed attempt and when the next one starts. The wait is
  // durable: retry_at is stored, so a resumed run waits out the remainder.
  Status schedule_retry(StepState& st, AttemptRecord a, const std::string& message);

  RunStatus outcome_status() const;

  Status finish_run();

  // The store failed: nothing more can be recorded. Wait for running
  // processes (already killed) to exit, then report the failure.
  void finish_after_fatal() {
    for (auto& s : steps_)
      if (s.attempt && s.attempt->in_flight()) return;  // their ends schedule another pass
    finish_with(RunStatus::failed, fatal_.message());
  }

  void finish_with(RunStatus status, const std::string& error);

  void close();

  Engine& engine_;
  sandbox::Sandbox* sandbox_ = nullptr;  // chosen by choose_sandbox()
  workflows::Workflow wf_;  // the run's own copy; StepState::def points into it
  StartOptions opts_;
  std::function<void(const RunResult&)> done_;
  nlohmann::json payload_;
  nlohmann::json env_ = nlohmann::json::object();  // the workflow's env, rendered at start
  std::map<std::string, std::string> base_env_;     // step_base_env() plus env_
  nlohmann::json ctx_;                              // inputs, env, run; steps filled per step
  std::vector<StepState> steps_;
  std::unordered_map<std::string, size_t> index_;  // step id -> position in steps_
  std::vector<EventRecord> pending_events_;  // written, delivered after commit
  int64_t seq_ = 0;
  int running_ = 0;
  bool cancelling_ = false, cancel_recorded_ = false, finishing_ = false;
  bool pass_scheduled_ = false, closed_ = false, scratch_ready_ = false;
  bool finish_recorded_ = false;  // the pass that records the end has committed; no pass after it
  std::string cancel_reason_;
  Status fatal_;
  // How many messages of each agent attempt's conversation the store holds
  // ({step, attempt}), as this run last wrote them: read from the store at
  // the attempt's first checkpoint only. A read inside the checkpoint's
  // transaction would make it run on the loop, after the batch in flight.
  std::map<std::pair<std::string, int>, size_t> stored_messages_;
  std::chrono::steady_clock::time_point started_;
  uv_idle_t idle_{};            // schedules passes; the Run is deleted when it has closed
  // Timers of the engine's clock; they call back into the Run until close().
  std::unique_ptr<util::Timer> retry_timer_;  // wakes waiting retries
  std::unique_ptr<util::Timer> heartbeat_;    // renews the lease
};

}  // namespace hearth::engine
