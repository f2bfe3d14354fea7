// libhearth's engine: runs workflows on a libuv loop that the host owns.
//
//   uv_loop_t* loop = ...;                       // the host's loop
//   auto engine = hearth::Engine::open(loop, {.state_path = "state.db", .repo = "/src/app"});
//   auto wf = hearth::load_workflow("/src/app/.hearth/workflows/ci.toml");
//   engine.value()->on_event([](const hearth::Event& e) { ... });
//   engine.value()->start(*wf.workflow, {}, [](const hearth::RunResult& r) { ... });
//   uv_run(loop, UV_RUN_DEFAULT);                // the host runs its loop as always
//
// Threads: the engine creates none and hands no work to libuv's thread
// pool. Every method must be called on the loop's thread, and every
// callback runs on it. SQLite commits happen on the loop thread (a few
// hundred microseconds each, grouped per scheduling pass).
//
// Signals: the engine installs no signal handlers; a host that wants
// SIGINT to cancel runs calls cancel_all() from its own handler. One
// exception: when SIGPIPE still has its default action, the first step
// granted a command sets it to ignored (a granted program that closes its
// stdin early must not end the host process); a host that handles SIGPIPE
// itself is left alone.
//
// Lifetime: the loop must outlive the Engine. Destroying the Engine
// REQUIRES active_runs() == 0: call shutdown() (or cancel_all()) and wait
// for its callback first. Handles the engine opened close on the loop; run
// the loop until it returns (or until the shutdown callback) before
// uv_loop_close.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/export.h"
#include "hearth/status.h"
#include "hearth/workflow.h"

namespace hearth {

class Engine;
namespace detail {
struct EngineImpl;
/// For libhearth's own implementation (the webhook server of server.h).
EngineImpl& impl_of(Engine& engine);
}  // namespace detail

enum class RunStatus { running, succeeded, failed, cancelled };
HEARTH_API const char* to_string(RunStatus status);

/// A step's state. `waiting`: a failed attempt waits out its retry delay.
enum class StepStatus { pending, running, waiting, succeeded, failed, skipped, cancelled };
/// The word the store, JSON and `hearth show` use: "pending", "running", ...
HEARTH_API const char* to_string(StepStatus status);

/// How a run ended. `exit_code` follows `hearth run`: 0 succeeded, 1 failed,
/// 130 cancelled.
struct RunResult {
  std::string run_id;
  RunStatus status = RunStatus::failed;
  std::string error;  // set when the run failed for a reason other than a step
  int exit_code() const { return status == RunStatus::succeeded ? 0 : status == RunStatus::cancelled ? 130 : 1; }
};

/// One committed transition of a run (see docs/embedding.md for the types
/// and their data: run.started, step.started, step.succeeded, ...).
struct Event {
  std::string run_id;
  int64_t seq = 0;         // run-local, from 1, without gaps
  int64_t at_ms = 0;       // Unix time in milliseconds
  std::string type;        // "step.succeeded"
  std::string step_id;     // empty for run events
  std::string data_json;   // the event's data, a JSON object
  /// The whole event as one line of JSON, as `hearth run --events jsonl` prints it.
  std::string json;
};

/// One attempt of a step, as recorded.
struct AttemptInfo {
  int number = 0;  // from 1
  int64_t started_at_ms = 0;
  std::optional<int64_t> finished_at_ms;
  std::optional<int64_t> exit_code;
  int signal = 0;           // the signal that ended it, 0 when none
  /// exited | timeout | cancelled | spawn-error | output-error | interrupted;
  /// empty while it runs.
  std::string reason;
  std::string output_tail;  // the last bytes of its merged stdout and stderr
  int64_t output_bytes = 0; // everything it printed
};

struct StepInfo {
  std::string id;
  StepStatus status = StepStatus::pending;
  int attempts = 0;
  std::optional<int64_t> exit_code;
  std::optional<int64_t> started_at_ms, finished_at_ms;
  std::string outputs_json;  // {"name": "value", ...}
  std::string reason;        // why it was skipped, failed or cancelled
  /// Skill and prompt steps: the validated result as JSON text; "null" when none.
  std::string result_json = "null";
  std::optional<int64_t> retry_at_ms;  // status "waiting": when the next attempt starts
  std::vector<AttemptInfo> attempt_list;  // oldest first; filled by run(), empty in runs()
  std::vector<std::string> needs;         // direct dependencies, as the run's workflow declares them
};

struct RunInfo {
  std::string id;
  std::string workflow;       // name
  std::string workflow_hash;  // of the snapshot the run executes
  RunStatus status = RunStatus::running;
  bool interrupted = false;   // recorded as running but no live engine holds it: resume() continues it
  int64_t created_at_ms = 0;
  std::optional<int64_t> finished_at_ms;
  std::string error;
  std::string payload_json;
  std::vector<StepInfo> steps;  // filled by run(), empty in runs()
  std::string workflow_path;    // the file the run was started from
  /// The run as one JSON object, the shape `hearth runs --json` prints (from
  /// runs()) or `hearth show --json` prints (from run(): with the payload,
  /// the steps and their attempts). docs/cli.md describes the fields.
  std::string json;
};

/// The conversation of one attempt of a skill or prompt step, as last
/// checkpointed (it is replaced at every checkpoint, so a finished attempt
/// holds its whole conversation).
struct Transcript {
  std::string step_id;
  int attempt = 0;
  int turns = 0;             // model turns so far
  int64_t saved_at_ms = 0;
  /// {"messages": [{"role": "user"|"assistant", "content": [block, ...]}, ...],
  ///  "usage": {"input_tokens": N, "output_tokens": N}, "result": ... (once accepted)}
  /// with blocks {"type": "text", "text"}, {"type": "tool_use", "name", "input"}
  /// and {"type": "tool_result", "content", "is_error"}: see docs/embedding.md.
  std::string json;
};

struct EngineOptions {
  /// Where runs are kept: the path of a SQLite database, created (with its
  /// directory) if missing, or a PostgreSQL database's postgres:// URL (the
  /// engine's files on this machine then go in <repo>/.hearth).
  std::string state_path;
  /// The repository that runs work in, unless StartOptions::repo says otherwise. Absolute.
  std::string repo;
  int jobs = 0;                                 // most steps running at once per run; 0: CPUs
  std::chrono::milliseconds kill_grace{2000};  // SIGTERM -> SIGKILL on timeout and cancel
  /// A run whose engine has not renewed its lease for this long may be
  /// taken over by another engine (a heartbeat renews it every sixth of it).
  std::chrono::milliseconds lease_timeout{30000};
};

// Sandboxes: a workflow runs its commands in the `namespace` backend
// (isolated: own user, mount, pid, net namespaces, seccomp; docs/sandbox.md)
// unless its [sandbox] table says kind = "local" (the host, no isolation).
// Where this host cannot create namespaces, start() and resume() of a
// workflow that needs them fail with an Error saying why; the engine never
// falls back to `local` on its own.

struct StartOptions {
  /// Empty: a new id. An id the store already holds is refused by start();
  /// use resume() for it.
  std::string run_id;
  std::string payload_json = "{}";  // checked against the workflow's [inputs]
  std::string repo;                 // empty: EngineOptions::repo
  int jobs = 0;                     // 0: EngineOptions::jobs
  /// Model of skill and prompt steps instead of the workflow's [model]:
  /// "anthropic/NAME", "openai/NAME", or "replay:/abs/cassette.jsonl" to play
  /// a recording back (docs/models.md). Empty: the workflow's.
  std::string model;
  /// Record every model exchange of the run to this cassette file (a live
  /// model only). Empty: no recording.
  std::string record;
};

struct ResumeOptions {
  /// Re-run these steps and every step that needs them.
  std::vector<std::string> from;
  /// Resume with this definition instead of the run's snapshot; refused unless
  /// every step that keeps its outcome is defined the same in both.
  std::optional<Workflow> current;
  int jobs = 0;
  std::string model;  // as StartOptions::model
};

/// A call of a command the host implements (register_command), made by a
/// step through the command's name like any granted command.
struct CommandCall {
  std::string run_id, step_id;
  int attempt = 0;
  /// argv[0] is the command's name. An argument naming a file was checked to
  /// lie inside the workspace; an absolute one is given as its host path.
  std::vector<std::string> argv;
  std::string cwd;        // host directory the call was made in, inside `workspace`
  std::string workspace;  // host directory of the step's workspace
  std::string input;      // the caller's whole stdin (at most 1 MiB; more fails the call)
};
struct CommandReply {
  int exit_code = 0;
  std::string output;  // written to the caller's stdout
  std::string error;   // written to the caller's stderr
};
/// Runs on the loop thread once the call has passed the command's policy and
/// its stdin has ended. Call `reply` exactly once, then or later (after your
/// own asynchronous work); a reply after the call ended (its timeout, the
/// caller killed, the run cancelled) is dropped. Must not block the loop.
/// An exception thrown out of the handler fails the call with its what()
/// (exit status 1), unless the handler had replied already.
using CommandHandler = std::function<void(const CommandCall& call, std::function<void(CommandReply)> reply)>;

/// A call of a tool the host implements (register_tool), made by the model
/// of a skill or prompt step.
struct ToolCall {
  std::string run_id, step_id;
  int attempt = 0;
  std::string tool;
  std::string arguments_json;  // a JSON object valid against the tool's input schema
  std::string workspace;       // host directory of the step's workspace
};
struct ToolReply {
  std::string text;       // what the model reads (secrets of the run masked, cut at 256 KiB)
  bool is_error = false;  // sent as the tool result's error flag
};
/// Same contract as CommandHandler.
using ToolHandler = std::function<void(const ToolCall& call, std::function<void(ToolReply)> reply)>;

using FinishedCallback = std::function<void(const RunResult&)>;
using EventCallback = std::function<void(const Event&)>;
/// Live output of a step: stdout and stderr merged, in chunks. The view is
/// valid during the call only.
using OutputCallback = std::function<void(const std::string& run_id, const std::string& step_id, std::string_view chunk)>;

class HEARTH_API Engine {
 public:
  /// Opens the store and prepares an engine on `loop`. Nothing runs until
  /// start() or resume(). The loop must outlive the engine.
  static Result<std::unique_ptr<Engine>> open(uv_loop_t* loop, EngineOptions options);
  /// REQUIRES: active_runs() == 0.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Starts a run of `workflow`. On error (the id is taken or malformed, the
  /// payload is not JSON or does not match [inputs], the store failed)
  /// nothing is recorded and `done` never fires. On success returns the run
  /// id; `done` fires exactly once, on the loop thread, after the run's final
  /// state has committed. The engine keeps its own copy of the workflow.
  Result<std::string> start(const Workflow& workflow, StartOptions options, FinishedCallback done);

  /// Continues a recorded run that did not succeed (interrupted by a crash,
  /// failed or cancelled) from its stored state and workflow snapshot.
  /// Refused while another live engine holds the run. Same callback
  /// contract as start().
  Result<std::string> resume(const std::string& run_id, ResumeOptions options, FinishedCallback done);

  /// Cancels a run of this engine: running steps are killed, pending ones
  /// marked cancelled; its `done` fires once that has committed. Returns
  /// false if this engine runs no such run. May be called from callbacks.
  bool cancel(const std::string& run_id, const std::string& reason = "cancelled");
  /// Cancels every run of this engine.
  void cancel_all(const std::string& reason = "cancelled");
  /// Cancels every run and calls `drained` (on the loop thread) once every
  /// run's `done` has fired; then the engine may be destroyed. Calls
  /// `drained` on the next loop iteration when nothing runs.
  void shutdown(std::function<void()> drained);
  size_t active_runs() const;
  /// Why the namespace sandbox cannot run on this host (no user namespaces,
  /// an AppArmor rule, a container without them), with what to do; empty
  /// when it can. Workflows that do not choose [sandbox] kind = "local" are
  /// refused by start() and resume() with this reason, never run on the host.
  std::string sandbox_problem() const;

  /// Every committed event of every run of this engine, in order per run.
  /// Returns an id for unsubscribe(). Callbacks may call cancel(), cancel_all()
  /// and the queries below, not start() or resume() (defer those with a
  /// uv_idle or uv_timer of the host's).
  uint64_t on_event(EventCallback callback);
  uint64_t on_output(OutputCallback callback);
  void unsubscribe(uint64_t id);

  // --- commands and tools implemented by the host ---
  /// Implements the granted command `name` for workflows that declare it
  /// with `[commands.<name>] host = true` (and allow/deny patterns, which
  /// apply as to any command; see docs/embedding.md). A step calls it by
  /// name inside its sandbox; the call travels through the same broker,
  /// policy checks, path checks and journal as a program's. Registering a
  /// name again replaces the handler for steps that start afterwards.
  /// start() and resume() refuse a workflow whose steps use a host command
  /// or tool that is not registered, naming each.
  Status register_command(const std::string& name, CommandHandler handler);
  /// Implements the tool `name` that skill and prompt steps may list in
  /// `tools` when the workflow declares `[tools.<name>] host = true`.
  /// `input_schema_json` is a JSON Schema (draft 7) with "type": "object":
  /// the model sees it with `description`, and arguments that do not match
  /// are answered with the violations without calling the handler. Names:
  /// 1-64 of [A-Za-z0-9_-], not a built-in tool's.
  Status register_tool(const std::string& name, const std::string& description,
                       const std::string& input_schema_json, ToolHandler handler);

  // --- queries of the store (synchronous, on the loop thread) ---
  /// Newest first, at most `limit`, optionally of one workflow (by name).
  Result<std::vector<RunInfo>> runs(int limit = 20, const std::string& workflow = "");
  /// One run with its steps.
  Result<RunInfo> run(const std::string& run_id);
  /// Stored events of a run with seq > after_seq.
  Result<std::vector<Event>> events(const std::string& run_id, int64_t after_seq = 0);
  /// Ids of runs recorded as running that no live engine holds: what a
  /// crash left behind. Oldest first.
  Result<std::vector<std::string>> interrupted_runs();
  /// Whether the store holds a run with this id (in any state).
  Result<bool> has_run(const std::string& run_id);
  /// The conversations of a run's skill and prompt steps, by step then
  /// attempt; only those of `step_id` when it is not empty. Empty when none
  /// has checkpointed yet.
  Result<std::vector<Transcript>> transcripts(const std::string& run_id, const std::string& step_id = "");

 private:
  explicit Engine(std::unique_ptr<detail::EngineImpl> impl);
  friend detail::EngineImpl& detail::impl_of(Engine& engine);
  std::unique_ptr<detail::EngineImpl> impl_;
};

}  // namespace hearth
