// Where commands run. The engine hands a Sandbox an ExecSpec and gets output
// chunks and one exit notification back on its loop. Backends: `local` (the
// host, local.cpp); `namespace` (isolated) arrives with the sandbox issue.
// This folder knows nothing of workflows or runs.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

struct ExecSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  std::vector<std::string> env;   // the complete environment, "NAME=value"
  std::string cwd;                // must exist
  /// Killed (the whole process group: SIGTERM, then SIGKILL after
  /// kill_grace) when it runs longer than this.
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_grace{2000};
};

struct ExitInfo {
  int64_t exit_status = 0;  // exit code, or 128+signal when killed by a signal
  int term_signal = 0;      // 0 unless killed by a signal
  bool timed_out = false;   // the timeout fired and the process was killed for it
  bool killed = false;      // kill() was called (cancellation)
  std::chrono::steady_clock::duration elapsed{};
};

struct ExecCallbacks {
  /// Output as it arrives: stdout and stderr merged in order, in chunks of
  /// any size. The view is valid only during the call.
  std::function<void(std::string_view chunk)> on_output;
  /// Exactly once, after all output has been delivered. Any process the
  /// command left behind in its process group has been killed.
  std::function<void(const ExitInfo&)> on_exit;
};

/// A running command. Valid from a successful spawn until on_exit returns;
/// after that the backend frees it. Not copyable, not movable.
class Process {
 public:
  virtual ~Process() = default;
  /// Ends the command: SIGTERM to its process group, SIGKILL after the
  /// grace period. Safe to call more than once; ignored after exit.
  virtual void kill() = 0;
  virtual int pid() const = 0;
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;
  /// Starts `spec` on `loop`. On error returns it and fires no callback; on
  /// success fires on_exit exactly once, on the loop thread.
  virtual Result<Process*> spawn(uv_loop_t* loop, const ExecSpec& spec, ExecCallbacks callbacks) = 0;
  virtual std::string_view kind() const = 0;
};

/// The host itself: no isolation. For trusted runs inside an already
/// isolated runner.
std::unique_ptr<Sandbox> make_local_sandbox();

}  // namespace hearth::sandbox
