// Private to sandbox/: the two kinds of SandboxSession (sandbox.h). The
// namespace backend's keeps one helper process (hearth-stepbox) running in
// one sandbox and asks it to start each command (session_protocol.h); the
// local backend's spawns each command like Sandbox::spawn.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "sandbox/sandbox.h"

namespace hearth::sandbox {

/// A started helper: the engine's child, the init of the sandbox's pid
/// namespace, with its control socket's other end as stdout.
struct StartedHelper {
  int pid = -1;
  int control_fd = -1;            // the engine's end (owned by the session)
  std::function<void()> release;  // after the helper has exited: cgroups, forwards
};

/// The session around `helper` (taken, also on error: then killed).
/// `base`: the session's isolation (workspace for cwds, output cap).
Result<std::unique_ptr<SandboxSession>> make_helper_session(uv_loop_t* loop, StartedHelper helper,
                                                            const ExecSpec& base);

/// A session that runs each command as `sandbox.spawn` of `base`'s
/// isolation with the command's argv, env, cwd and timeout.
std::unique_ptr<SandboxSession> make_spawning_session(uv_loop_t* loop, Sandbox& sandbox, const ExecSpec& base);

/// The hearth-stepbox program: $HEARTH_STEPBOX, else beside the running
/// executable, else in the build tree, else where `meson install` put it.
std::string find_stepbox();

}  // namespace hearth::sandbox
