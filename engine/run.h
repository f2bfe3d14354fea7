// Private to engine/: one live run. A Run owns three libuv handles (a pass
// scheduler, a retry timer, a lease heartbeat) and deletes itself once they
// have closed (close()). The Engine holds a non-owning pointer from start()
// or resume() until finished(). Scheduling and execution live in run.cpp,
// taking over a recorded run in resume.cpp.
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
#include "agent/harness.h"
#include "engine/agent_bash.h"
#include "engine/engine.h"
#include "engine/events.h"
#include "engine/grants.h"
#include "engine/proxies.h"
#include "sandbox/workspace.h"
#include "util/safe_open.h"

namespace hearth::engine {

inline constexpr size_t kTailBytes = 64 * 1024;  // output kept per attempt
inline constexpr uint64_t kHeartbeatMs = 5000;    // lease renewal; see kLeaseStaleMs

inline bool terminal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "skipped" || status == "cancelled";
}

inline int64_t ms_since(std::chrono::steady_clock::time_point t) {
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
  // The attempt's own directory (<scratch>/<step>.<attempt>), made fresh by
  // spawn() and removed by record_outcome(): the step sees only it, at
  // /run/hearth in the namespace sandbox. The engine reads what the step left
  // there (output file, the agent's cwd file) only through attempt_dir_fd.
  // Declared before `bash`, which borrows the descriptor: it outlives it.
  std::string attempt_dir;         // host path, set by prepare_spec()
  std::string output_inside;       // $HEARTH_OUTPUT as the step sees it
  UniqueFd attempt_dir_fd;
  std::chrono::steady_clock::time_point started;
  bool exited = false;            // an outcome waits to be recorded
  sandbox::ExitInfo exit;
  std::string spawn_error;
  // Granted commands (engine/grants.h): prepared with the spec, the broker
  // started with the process and closed when it exits.
  std::optional<AttemptGrants> grants;
  commands::Broker* broker = nullptr;
  // API proxies (engine/proxies.h): prepared with the spec, the server
  // started with the process and closed when it exits.
  std::optional<AttemptProxies> proxies;
  proxy::ProxyServer* proxy_server = nullptr;
  // Output with every secret hidden before it is kept or shown.
  std::unique_ptr<commands::StreamRedactor> redactor;
  // Skill and prompt steps (run_agent.cpp): the attempt is a conversation.
  std::string instructions;                  // rendered by prepare_spec()
  std::optional<std::pair<std::string, std::string>> skill_dir;  // {host, as the agent names it} when not in its workspace
  std::unique_ptr<SandboxBashSession> bash;  // declared before harness: outlives it
  std::unique_ptr<agent::Harness> harness;
  std::optional<agent::AgentOutcome> agent_outcome;
  std::optional<nlohmann::json> carried_state;  // resume: the conversation the next attempt continues
  uv_timer_t* agent_timer = nullptr;         // the step's timeout
  bool agent_timed_out = false;
};


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
  Status begin(const nlohmann::json& payload);

  /// Takes over a recorded run: its lease, its steps' state; marks attempts
  /// that were running as interrupted; resets what `opts` asks to re-run.
  /// On error nothing is changed and the caller must call discard().
  Status adopt(const ResumeOptions& ropts);

  /// Frees a run whose begin() or adopt() failed.
  void discard() { close(); }

  void cancel(const std::string& reason);

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

  Status render_env();

  // The backend for this run's [sandbox] kind; error when the engine has none.
  Status choose_sandbox();
  bool isolated() const { return sandbox_ && sandbox_->kind() != "local"; }
  // The host directory the run's commands see at /workspace.
  std::string workspace_dir() const;
  // Prepares the workspace the first time a step needs it (a checkout is
  // made then; a resumed run finds the one made before).
  Status ensure_workspace();
  // The engine's state directory relative to the workspace, when it lives
  // inside it (<repo>/.hearth with workspace = "repo"): hidden from steps.
  std::optional<std::string> hidden_state_dir() const;
  // Granted commands of an attempt: the grants, the broker and its journal.
  Status prepare_grants_for(StepState& st, const nlohmann::json& ctx);
  Status prepare_jail(StepState& st, commands::BrokerOptions& options);
  Status start_broker(StepState& st);
  void close_broker(StepState& st);
  Status journal_call_started(StepState& st, const commands::Invocation& inv);
  void journal_call_finished(StepState& st, const commands::Invocation& inv);
  std::string grants_root() const;
  // Skill and prompt steps (run_agent.cpp).
  Status prepare_agent(StepState& st, const nlohmann::json& ctx);
  Result<model::Client*> client_for(const workflows::AgentStep& a);
  Status start_agent(StepState& st);
  void stop_agent_timer(StepState& st);
  void agent_outcome_of(StepState& st, std::string& status, std::string& message);
  std::string redact(std::string text) const;
  std::map<std::string, std::unique_ptr<model::Client>> clients_;  // by model spec; outlive the harnesses
  // API proxies of an attempt (run_proxies.cpp), like its grants.
  Status prepare_proxies_for(StepState& st);
  Status start_proxies(StepState& st);
  void close_proxies(StepState& st);
  void record_proxy_event(StepState& st, int attempt, const proxy::ProxyEvent& e);
  SecretValues secret_values_;  // the workflow's declared secrets, read when the run started or resumed
  std::shared_ptr<const commands::SecretSet> secrets_;  // every secret of the workflow's commands and proxies
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::optional<sandbox::Workspace> workspace_;

  // Commits what begin()/adopt() wrote, then starts heartbeats and scheduling.
  Status commit_and_go(Status s);

  Status adopt_in_transaction(const ResumeOptions& ropts);
  Status interrupt(StepState& st);

  // The lease says the run is alive; a stopped heartbeat lets another
  // process take it over (resume.cpp).
  static void on_heartbeat(uv_timer_t* t) noexcept;

  static void on_retry_timer(uv_timer_t* t) noexcept { static_cast<Run*>(t->data)->schedule(); }

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

  Status event(const char* type, const std::string& step, nlohmann::json data);

  void deliver_events();

  // One write outside a scheduling pass, committed at once (run.cpp).
  Status commit_now(const std::function<Status()>& write);

  // One scheduling pass: record outcomes, decide ready steps, finish the run
  // if nothing is left; commit; then deliver events and spawn.
  void pass();

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

  Status prepare_spec(StepState& st, nlohmann::json& ctx);

  std::string scratch_dir() const { return opts_.scratch_dir + "/" + id(); }

  Status start_attempt(StepState& st);

  Status close_step(StepState& st, const char* status, const std::string& reason, const char* type);

  // The attempt's own directory, made fresh before its process starts (a
  // leftover of the same name is removed first) and opened; removed, never
  // following what the step left there, once its outcome is recorded.
  Status make_attempt_dir(StepState& st);
  void remove_attempt_dir(StepState& st);

  void spawn(StepState& st);

  void on_output(StepState& st, std::string_view chunk);

  Status record_outcome(StepState& st);

  // Records the failed attempt and when the next one starts. The wait is
  // durable: retry_at is stored, so a resumed run waits out the remainder.
  Status schedule_retry(StepState& st, const std::string& message);

  Result<nlohmann::json> read_outputs(const StepState& st);

  RunStatus outcome_status() const;

  Status finish_run();

  // The store failed: nothing more can be recorded. Wait for running
  // processes (already killed) to exit, then report the failure.
  void finish_after_fatal() {
    for (auto& s : steps_)
      if (s.process || (s.harness && !s.agent_outcome)) return;  // their exits schedule another pass
    finish_with(RunStatus::failed, fatal_.message());
  }

  void finish_with(RunStatus status, const std::string& error);

  void close();

  Engine& engine_;
  sandbox::Sandbox* sandbox_ = nullptr;  // chosen by choose_sandbox()
  workflows::Workflow wf_;  // the run's own copy; StepState::def points into it
  RunOptions opts_;
  std::function<void(const RunOutcome&)> done_;
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
  std::string cancel_reason_;
  Status fatal_;
  std::chrono::steady_clock::time_point started_;
  uv_idle_t idle_{};            // schedules passes
  uv_timer_t retry_timer_{};    // wakes waiting retries
  uv_timer_t heartbeat_{};      // renews the lease
  int closed_handles_ = 0;      // the Run deletes itself when all three have closed
  friend class Engine;
};

}  // namespace hearth::engine
