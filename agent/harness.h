// The agent loop of a skill or prompt step, on one libuv loop, no threads:
//
//   turn: model request ─► assistant message ─► checkpoint (intent)
//         ─► tool calls, in order (read/write/edit/glob/grep, bash, submit_result)
//         ─► tool results ─► checkpoint (turn complete) ─► next turn
//
// until the result is accepted (submit_result valid against the result
// schema; without a schema, a reply with no tool calls: its text is the
// result), or a limit, a model error, a failed checkpoint or cancel() ends it.
//
//   auto h = agent::Harness::create(loop, spec, callbacks);   // sync checks
//   if (!h) -> h.message()
//   (*h)->start();            // or (*h)->resume(saved_state)
//   ... callbacks.on_done(outcome) fires exactly once, on the loop ...
//
// Durability: the conversation is a JSON value (`state`, see
// docs/skills.md#checkpoints). The harness hands it to `checkpoint` twice a
// turn: when the assistant message has arrived, before any of its tool calls
// runs (the intent), and when every call has its result. The caller commits
// it before returning. resume(state) continues from the last one; tool calls
// the state has no results for are answered "interrupted", never re-run.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/bash.h"
#include "agent/tools.h"
#include "agent/workspace.h"
#include "model/client.h"
#include "util/status.h"

namespace hearth::agent {

/// A tool implemented outside the harness (by the program embedding Hearth).
/// Its arguments are checked against definition.input_schema (an object
/// schema) before `call`; invalid ones are answered with the violations.
/// `call` runs on the loop and calls `done` once, then or later; a result
/// arriving after the attempt ended is dropped.
struct CustomTool {
  ToolDefinition definition;
  std::function<void(const nlohmann::json& args, std::function<void(ToolResult)> done)> call;
};

/// What an agent attempt is given.
struct AgentSpec {
  /// The model spec ("anthropic/claude-…", "openai/gpt-…", "replay:<file>").
  /// Ignored when `client` is given.
  std::string model;
  /// A client to share (e.g. one per run and model); must outlive the
  /// harness. Null: the harness makes its own from `model` and `client_options`.
  model::Client* client = nullptr;
  model::ClientOptions client_options;

  /// The step's instructions: workflows::skill_instructions(...) for a skill
  /// step, the prompt text for a prompt step. They close the system prompt,
  /// after the built-in preamble and the workspace's AGENTS.md.
  std::string instructions;
  /// The first user message; empty: a built-in one asking to do the task.
  std::string task;

  /// Host folder of the workspace: file tools work in it, AGENTS.md is read
  /// from it. Empty: no file tools and no AGENTS.md.
  std::string workspace;
  WorkspaceOptions workspace_options;
  /// Host folders the file tools may read (not write) by absolute paths
  /// under their mount: {host folder, mount}.
  std::vector<std::pair<std::string, std::string>> read_only_dirs;
  ToolLimits tool_limits;
  /// The tools offered, by name: any of read, write, edit, glob, grep, bash.
  /// submit_result is added when there is a result schema.
  std::vector<std::string> tools = {"read", "write", "edit", "glob", "grep", "bash"};
  /// REQUIRED when `tools` has bash: the step's shell. Must outlive the harness.
  BashSession* bash = nullptr;
  /// Offered when `tools` names them, after bash, in the order of `tools`.
  std::vector<CustomTool> custom_tools;

  /// JSON Schema (draft 7) of the result; none: the final reply's text.
  std::optional<nlohmann::json> result_schema;
  /// Rejected results the agent may correct; one more rejection fails.
  int result_retries = 2;
  /// Model turns at most (a turn is one model response and its tool calls).
  int max_turns = 50;
  /// Token budget: input + output tokens as the provider reports them,
  /// summed over turns. 0: no budget.
  int64_t max_tokens = 0;
  /// max_tokens of each model request (the length of one response).
  int response_max_tokens = 8192;
};

/// Why an attempt failed.
enum class Failure {
  none,
  model,            // the client's error (see model_error)
  max_turns,
  token_budget,
  result_rejected,  // more than result_retries rejections
  refused,          // the model refused (stop reason refusal)
  cut_off,          // without a result schema: the final reply hit response_max_tokens
  checkpoint,       // the checkpoint callback failed: nothing is carried on unsaved
  cancelled,
};
const char* to_string(Failure f);

struct AgentOutcome {
  Failure failure = Failure::none;
  std::string reason;                             // for a user: the cause and the numbers
  std::optional<model::ErrorKind> model_error;    // with Failure::model
  nlohmann::json result;                          // when ok(): the validated result
  int turns = 0;
  model::Usage usage;                             // summed over turns
  bool ok() const { return failure == Failure::none; }
};

struct TurnEvent {
  int turn = 0;                 // from 1
  model::Usage usage;           // this turn's
  model::Usage total;           // all turns so far
  model::StopReason stop_reason = model::StopReason::end_turn;
  std::string text;             // the assistant's text (redacted)
  int attempts = 1;             // HTTP attempts of the model request
  size_t tool_calls = 0;
};

struct ToolCallEvent {
  int turn = 0;
  std::string id;
  std::string name;
  std::string arguments;        // JSON text (redacted)
  std::string output;           // what the model was told (redacted)
  bool is_error = false;
  std::chrono::milliseconds duration{0};
};

struct RejectionEvent {
  int turn = 0;
  int rejection = 0;            // 1, 2, …
  int allowed = 0;              // result_retries
  std::vector<std::string> errors;  // "pointer: message" (redacted)
};

/// Callbacks, all on the loop thread. Only on_done may destroy the harness;
/// cancel() may be called from any of them.
struct HarnessCallbacks {
  /// Applied to every tool argument, tool output, assistant text, rejection
  /// error and failure reason before an event carries it. Null: identity.
  std::function<std::string(std::string)> redact;
  /// Persist `state`; return an error when it could not be saved (the
  /// attempt then fails with Failure::checkpoint). Null: nothing is saved.
  std::function<Status(const nlohmann::json& state)> checkpoint;
  std::function<void(int turn)> on_turn_started;
  std::function<void(const TurnEvent&)> on_turn_finished;
  std::function<void(const ToolCallEvent&)> on_tool_call;  // after the call
  std::function<void(const RejectionEvent&)> on_result_rejected;
  /// Exactly once per start()/resume() that returned ok; may fire inside cancel().
  std::function<void(const AgentOutcome&)> on_done;
};

class Harness {
 public:
  /// Checks everything that can be checked before the first request: the
  /// workspace, AGENTS.md, the result schema, the tool names, bash given
  /// when offered, the client (its spec, its API key). Fires no callback.
  static Result<std::unique_ptr<Harness>> create(uv_loop_t* loop, AgentSpec spec, HarnessCallbacks callbacks);

  /// Destroying a running harness drops its model request and cancels its
  /// bash call without calling on_done.
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  /// Starts a new conversation. REQUIRES: not started before.
  Status start();
  /// Continues from a checkpointed state (same spec). An error (a malformed
  /// state, a finished one) fires no callback. REQUIRES: not started before.
  Status resume(const nlohmann::json& state);
  /// Aborts the model request or the bash call in flight; on_done then
  /// reports Failure::cancelled (at once for a model request, when the
  /// killed command has exited for bash). No-op when not running.
  void cancel();

  /// The result a finished state holds (a checkpoint taken after the result
  /// was accepted), if any: the caller need not resume such a state.
  static std::optional<nlohmann::json> finished_result(const nlohmann::json& state);

  /// The system prompt and the tools sent with every request.
  const std::string& system_prompt() const;
  const std::vector<model::Tool>& tools() const;
  /// Between a successful start()/resume() and on_done.
  bool running() const;

  struct Impl;

 private:
  explicit Harness(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;  // shared: callbacks in flight hold a weak_ptr
};

/// The system prompt: the built-in preamble (naming `mount` as the
/// workspace, and how to give the result), then AGENTS.md (when given) in a
/// <project_guidance> block, then the instructions.
std::string compose_system_prompt(const std::string& mount, bool has_result_schema,
                                  const std::optional<std::string>& agents_md, const std::string& instructions);

/// The first user message when AgentSpec::task is empty.
std::string default_task(bool has_result_schema);

/// The tool result given for a call the state has no outcome for.
inline constexpr const char* kInterruptedToolResult =
    "interrupted: the engine stopped before this tool call's outcome was recorded; it may or may not have taken "
    "effect";

}  // namespace hearth::agent
