// Events: every transition of a run, typed, with a run-local sequence number.
// They are stored in the same transaction as the change they describe and
// delivered to observers only after that transaction has committed.
//
// Types and their data:
//   run.started      {workflow, workflow_hash, payload}
//   run.cancelling   {reason}
//   run.finished     {status, error, duration_ms}
//   step.started     {attempt}
//   step.succeeded   {attempt, exit_code, duration_ms, outputs}
//   step.failed      {attempt, exit_code, reason, message, duration_ms}
//   step.skipped     {reason}
//   step.cancelled   {reason}
//   step.retrying    {attempt, reason, message, exit_code, retry_in_ms}
//   step.interrupted {attempt}   (found running when the run was resumed)
//   run.resumed      {workflow_hash, from, reset, interrupted}
//   agent.turn       {attempt, turn, stop_reason, tool_calls, usage, total, http_attempts, text}
//   agent.tool_call  {attempt, turn, id, tool, arguments, is_error, duration_ms, output}
//   agent.result_rejected {attempt, turn, rejection, allowed, errors}
//   proxy.request    {attempt, proxy, method, path, status, decision, rule,
//                     request_bytes, response_bytes, duration_ms}  (docs/proxies.md;
//                     never a header)
#pragma once

#include <string>
#include <string_view>

#include "engine/store.h"

namespace hearth::engine {

namespace event_type {
inline constexpr const char* run_started = "run.started";
inline constexpr const char* run_cancelling = "run.cancelling";
inline constexpr const char* run_finished = "run.finished";
inline constexpr const char* step_started = "step.started";
inline constexpr const char* step_succeeded = "step.succeeded";
inline constexpr const char* step_failed = "step.failed";
inline constexpr const char* step_skipped = "step.skipped";
inline constexpr const char* step_cancelled = "step.cancelled";
inline constexpr const char* step_retrying = "step.retrying";
inline constexpr const char* step_interrupted = "step.interrupted";
inline constexpr const char* run_resumed = "run.resumed";
// Granted commands: a call was refused or started, a call ended, and (after
// a crash) a call whose outcome is unknown.
inline constexpr const char* command_started = "command.started";
inline constexpr const char* command_finished = "command.finished";
inline constexpr const char* command_unknown = "command.unknown";
// Skill and prompt steps: a model turn ended, a tool call ended, a submitted
// result failed the schema. Texts are redacted and cut to 2000 bytes.
inline constexpr const char* agent_turn = "agent.turn";
inline constexpr const char* agent_tool_call = "agent.tool_call";
inline constexpr const char* agent_result_rejected = "agent.result_rejected";
// API proxies: one request answered (or one CONNECT tunnel ended).
inline constexpr const char* proxy_request = "proxy.request";
}  // namespace event_type

/// Receives what the engine does. Called on the loop thread; must not call
/// back into the engine except Engine::cancel.
class Observer {
 public:
  virtual ~Observer() = default;
  /// A committed event.
  virtual void on_event(const EventRecord& event) = 0;
  /// Output of a running step as it arrives (not stored as events; the
  /// tail is stored with the attempt). `chunk` is valid during the call only.
  virtual void on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) = 0;
};

/// The event as one line of JSON: {"run":..,"seq":..,"at":..,"type":..,"step":..,"data":{..}}.
std::string event_to_json_line(const EventRecord& e);

}  // namespace hearth::engine
