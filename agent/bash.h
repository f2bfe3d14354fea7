// The `bash` tool, as the harness offers it (the interface; local_bash.h is
// the host implementation for tests and development, the sandbox side is
// built with the namespace backend). One BashSession per agent step:
//
//  - Each call runs `command` with bash inside the step's sandbox, in the
//    session's current directory; the workspace is mounted at /workspace and
//    the session starts there.
//  - The cwd persists across calls: after the command, the session records
//    where the shell ended (a `cd` in one call holds in the next). A cwd that
//    no longer exists falls back to /workspace, and the result says so.
//    Environment variables and shell functions do NOT persist (each call is a
//    fresh shell), which keeps a call's effect easy to predict and to resume.
//  - Granted commands are on PATH (shims to the host-side broker); nothing
//    else reaches the host.
//  - stdout and stderr are merged in arrival order; the text for the model is
//    capped at kBashMaxOutputBytes, keeping the head and the tail with a marker
//    "[... N bytes omitted ...]" between them, made valid UTF-8. The exit code
//    (or the signal) is always reported; a non-zero exit is not an is_error
//    result (the model reads the code), a timeout or a sandbox failure is.
//  - `timeout_ms` (default 120000, at most 600000) kills the command's whole
//    process group when it expires.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/tools.h"

namespace hearth::agent {

inline constexpr std::size_t kBashMaxOutputBytes = 30000;
inline constexpr long kBashDefaultTimeoutMs = 120000;
inline constexpr long kBashMaxTimeoutMs = 600000;

/// The tool definition sent to the model.
inline ToolDefinition bash_definition() {
  return {"bash",
          "Run a bash command in the step's sandbox (workspace at /workspace). The working directory persists "
          "between calls; environment variables do not. Output (stdout and stderr) is cut to 30000 bytes, keeping "
          "its start and end.",
          {{"type", "object"},
           {"properties",
            {{"command", {{"type", "string"}, {"description", "The command line to run."}}},
             {"timeout_ms", {{"type", "integer"}, {"minimum", 1}, {"maximum", kBashMaxTimeoutMs},
                             {"description", "Kill the command after this many milliseconds (default 120000)."}}}}},
           {"required", {"command"}},
           {"additionalProperties", false}}};
}

/// One agent step's shell. Implemented on the sandbox side; lives on the
/// engine's loop thread.
class BashSession {
 public:
  virtual ~BashSession() = default;

  /// Runs one call. `args` is the model's argument object (validated against
  /// bash_definition().input_schema; a bad field is an is_error result).
  /// REQUIRES: no other run() of this session is in progress.
  /// `done` is called exactly once, on the loop thread, also when the session
  /// is destroyed or the run cancelled first (then with is_error and a reason).
  virtual void run(const nlohmann::json& args, std::function<void(ToolResult)> done) = 0;

  /// The current directory, as the sandbox sees it ("/workspace/src").
  /// Checkpointed with each turn so a resumed step starts where it was.
  virtual const std::string& cwd() const = 0;

  /// Sets the current directory, as the sandbox sees it: a resumed step's
  /// session starts where the checkpoint left it. Not during a run().
  virtual void restore_cwd(const std::string& cwd) = 0;

  /// Ends the run() in progress, if any: its whole process group is killed
  /// and `done` is called (later, on the loop) with is_error and
  /// "cancelled". Does nothing when no run() is in progress.
  virtual void cancel() = 0;
};

}  // namespace hearth::agent
