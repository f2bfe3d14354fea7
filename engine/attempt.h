// Private to engine/: one attempt of one step, and everything it holds while
// it lives. The life of an attempt (attempt.cpp, top to bottom):
//   1. prepare(): in the scheduling pass that decides the step — its
//      environment, the workspace, its isolation, its granted commands and
//      API proxies, an agent step's instructions. An error fails the step
//      before anything runs.
//   2. the Run records the attempt as started and commits.
//   3. start(): its own directory, the broker, the proxy server, then the
//      process (a script step) or the conversation (skill and prompt steps,
//      attempt_agent.cpp). A failure here is the attempt's outcome
//      ("spawn-error"), never an error of the pass.
//   4. it ends (the process exits, the conversation finishes):
//      stop_services() closes the broker and proxies, flushes the redacted
//      output, and the Run is told to record it.
//   5. outcome(): what the Run records — status, reason, message, outputs.
//   6. close(): every resource at once; also from the destructor.
// The Attempt lives in its step's state (StepState::attempt) from prepare()
// until its outcome is recorded; never moved (callbacks hold its address).
#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "agent/harness.h"
#include "commands/broker.h"
#include "commands/redact.h"
#include "engine/agent_bash.h"
#include "engine/grants.h"
#include "engine/proxies.h"
#include "engine/store.h"
#include "sandbox/sandbox.h"
#include "util/safe_open.h"
#include "workflows/workflow.h"

namespace hearth::engine {

class Run;

inline constexpr size_t kTailBytes = 64 * 1024;  // output kept per attempt

/// What the Run records of an ended attempt.
struct AttemptOutcome {
  StepStatus status = StepStatus::failed;  // succeeded | failed | cancelled
  std::string message;             // why it failed or was cancelled
  std::optional<nlohmann::json> outputs;  // what a script step wrote to $HEARTH_OUTPUT (redacted)
  std::optional<nlohmann::json> result;   // an agent step's accepted result (redacted)
};

class Attempt {
 public:
  /// Attempt `number` of the step `def` of `run`. REQUIRES: `run` and `def`
  /// outlive the attempt.
  Attempt(Run& run, const workflows::Step& def, int number);
  ~Attempt() { close(); }
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;

  /// 1. Builds what the attempt runs from the run's `base_env` and the
  /// expression context `ctx` (whose "env" receives the step's env).
  /// Errors name the step and the part that failed.
  Status prepare(const std::map<std::string, std::string>& base_env, nlohmann::json& ctx);

  /// 2. Makes ready what the attempt needs before it acts, none of which
  /// acts: its directory, the broker and proxies of its grants, an agent's
  /// model client and conversation. Called while the commit of its start
  /// becomes durable, so that this work overlaps the sync; start() calls it
  /// when no one did. Idempotent. REQUIRES: prepare() succeeded.
  void ready();

  /// 3. Starts it: spawns its process or sends the first model request.
  /// REQUIRES: prepare() succeeded and the attempt's start is durable.
  /// Never fails: a failure to start (or to make ready) ends the attempt at
  /// once with a spawn error. `carried` is the conversation an interrupted
  /// agent attempt left (resume), continued instead of starting over.
  void start(std::optional<nlohmann::json> carried);

  /// Kills the process (its group, SIGTERM then SIGKILL) or cancels the
  /// conversation; the attempt then ends as usual. Nothing for an attempt
  /// not started: it ran nothing, and close() drops what ready() made.
  void cancel();

  /// Whether its process or conversation still runs.
  bool in_flight() const { return started_ && (process_ || (harness_ && !agent_outcome_)); }

  /// Whether it has ended and waits for its outcome to be recorded.
  bool ended() const { return ended_; }

  /// 5. How it ended; fills `record` (reason, exit code, signal, finish time
  /// and output tail). REQUIRES: ended().
  AttemptOutcome outcome();

  /// 4. Closes the broker and the proxy server (their sockets and
  /// directories go once they have closed) and the agent's timer.
  void stop_services();

  /// 6. Everything the attempt holds: its services, the conversation, the
  /// bash session, its own directory. Idempotent.
  void close();

  int number() const { return number_; }
  const workflows::Step& def() const { return def_; }

  /// Its row in the store; the Run fills it when it records the start.
  AttemptRecord record;

 private:
  // prepare()
  Status prepare_isolation(std::map<std::string, std::string>& env);
  Status prepare_grants(const nlohmann::json& ctx, std::map<std::string, std::string>& env);
  Status prepare_proxies();
  Status prepare_agent(const nlohmann::json& ctx);  // attempt_agent.cpp
  // start()
  Status make_dir();
  Status prepare_jail(commands::BrokerOptions& options);
  Status start_broker();
  Status start_proxies();
  Status start_process();
  Status make_agent();                                         // attempt_agent.cpp
  Status start_agent(std::optional<nlohmann::json> carried);  // attempt_agent.cpp
  agent::HarnessCallbacks agent_callbacks();                  // attempt_agent.cpp
  void start_agent_timer();
  void fail_to_start(const Status& why);
  // The run's clock (util/clock.h): hides the store's now_ms() here.
  int64_t now_ms() const;
  // while it runs
  void on_output(std::string_view raw);
  void on_ended();
  // outcome()
  void script_outcome(AttemptOutcome& o);
  void agent_outcome(AttemptOutcome& o);  // attempt_agent.cpp
  Result<nlohmann::json> read_outputs();
  // close()
  void close_broker();
  void close_proxies();
  void stop_agent_timer();

  Run& run_;
  const workflows::Step& def_;
  const int number_;

  sandbox::ExecSpec spec_;
  // The attempt's own directory (<scratch>/<step>.<attempt>), made fresh by
  // start() and removed by close(): the step sees only it, at /run/hearth in
  // the namespace sandbox. The engine reads what the step left there (output
  // file, the agent's cwd file) only through dir_fd_. Declared before
  // bash_, which borrows the descriptor: it outlives it.
  std::string dir_;
  std::string output_inside_;  // $HEARTH_OUTPUT as the step sees it
  UniqueFd dir_fd_;
  // Granted commands (grants.h): prepared with the spec, the broker started
  // with the process and closed when it ends.
  std::optional<AttemptGrants> grants_;
  commands::Broker* broker_ = nullptr;
  // API proxies (proxies.h), likewise.
  std::optional<AttemptProxies> proxies_;
  proxy::ProxyServer* proxy_server_ = nullptr;
  // Output with every secret hidden before it is kept or shown.
  std::unique_ptr<commands::StreamRedactor> redactor_;
  // A script step: its process; deletes itself after it has exited.
  sandbox::Process* process_ = nullptr;
  sandbox::ExitInfo exit_;
  // Skill and prompt steps: the attempt is a conversation.
  std::string instructions_;  // rendered by prepare()
  std::optional<std::pair<std::string, std::string>> skill_dir_;  // {host, as the agent names it} when not in its workspace
  std::unique_ptr<SandboxBashSession> bash_;  // declared before harness_: outlives it
  std::unique_ptr<agent::Harness> harness_;
  std::optional<agent::AgentOutcome> agent_outcome_;
  std::unique_ptr<util::Timer> agent_timer_;  // the step's timeout, on the run's clock
  bool agent_timed_out_ = false;
  std::string spawn_error_;
  std::optional<Status> ready_;  // what ready() made of it, once it ran
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace hearth::engine
