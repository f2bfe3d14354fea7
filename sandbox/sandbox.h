// Where commands run. The engine hands a Sandbox an ExecSpec and gets output
// chunks and one exit notification back on its loop. Backends: `local` (the
// host, local.cpp) and `namespace` (user/mount/pid/net/ipc/uts namespaces,
// seccomp, limits; namespace.cpp). This folder knows nothing of workflows or runs.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/jail.h"
#include "util/clock.h"
#include "util/status.h"

namespace hearth::sandbox {

/// Network access of an isolated command. `none`: its own network namespace
/// with only loopback. `proxies`: the same, plus the Isolation's loopback
/// forwards (how API proxies and the egress proxy are reached; proxy/).
/// `host`: the host's network.
enum class Network { none, proxies, host };

/// A port on the sandbox's own loopback (127.0.0.1:port inside its network
/// namespace) whose connections the engine relays to a Unix socket on the
/// host. The socket is not visible inside the sandbox; only the port is.
struct LoopbackForward {
  uint16_t port = 0;
  std::string socket;  // absolute host path of a listening Unix socket
};

/// A host path made visible inside the sandbox at the same path.
struct Bind {
  std::string host;    // absolute host path
  std::string inside;  // absolute path inside; empty: the same as host
  bool writable = false;
};

/// What an isolating backend builds around the command. The `local` backend
/// ignores it (it isolates nothing).
struct Isolation {
  /// Host directory mounted read-write at /workspace; empty: an empty tmpfs.
  std::string workspace;
  Network network = Network::none;
  std::optional<uint64_t> memory_bytes;  // whole sandbox (cgroup), else per process (RLIMIT_AS)
  std::optional<uint64_t> pids;          // processes in the sandbox (cgroup, else RLIMIT_NPROC)
  std::optional<double> cpus;            // CPU time share, in CPUs (cgroup only)
  std::vector<Bind> binds;               // extra binds (--ro / --rw)
  /// Directories under the workspace (relative paths) the command must not
  /// see: each is covered by an empty read-only tmpfs (the engine's state
  /// directory when it lives in the repository).
  std::vector<std::string> hidden;
  /// Directories under the workspace (relative paths) the command may read
  /// but not change, rename or replace: each is bound read-only over itself
  /// (the repository's .hearth, whose workflows the engine trusts). One that
  /// is not a real directory (missing, a symlink) is left as it is.
  std::vector<std::string> read_only;
  /// With Network::proxies only (the namespace backend; `local` refuses
  /// them): each port listens from before the command starts until it exits.
  std::vector<LoopbackForward> forwards;
  /// Output delivered per command; past it a marker line is delivered once
  /// and the rest is read and dropped (the command is not blocked).
  uint64_t output_cap_bytes = 16 * 1024 * 1024;
};

/// Inside path of the workspace in the `namespace` backend.
inline constexpr const char* kWorkspaceInside = "/workspace";

struct ExecSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  std::vector<std::string> env;   // the complete environment, "NAME=value"
  /// Must exist. For an isolating backend a host path under the workspace is
  /// translated to the same place under /workspace; others are inside paths.
  std::string cwd;
  Isolation isolation;
  /// Killed (the whole process group: SIGTERM, then SIGKILL after
  /// kill_grace) when it runs longer than this.
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds kill_grace{2000};
  /// Runs the timeout and the kill grace; null: libuv timers on the loop
  /// given to spawn (util::LoopClock). Must outlive the command.
  util::Clock* clock = nullptr;
};

struct ExitInfo {
  int64_t exit_status = 0;  // exit code, or 128+signal when killed by a signal
  int term_signal = 0;      // 0 unless killed by a signal
  bool timed_out = false;   // the timeout fired and the process was killed for it
  bool killed = false;      // kill() was called (cancellation), or its session was closed
  std::chrono::steady_clock::duration elapsed{};
  /// Non-empty when the sandbox itself failed under the command (a session's
  /// helper died: the command was killed) or could not be set up around it
  /// (Sandbox::spawn: it never ran): what happened, for the user.
  std::string failure;
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
  /// The command's host pid (the namespace backend: its sandbox's init);
  /// 0 while it is still being started, until the loop has run.
  virtual int pid() const = 0;
};

/// One sandbox kept open to run many commands, one after another or at
/// once: an agent step's tool calls. Every command sees the same root, /tmp,
/// home directory, network namespace and limits (the cgroup counts the
/// whole session), and processes a command moved out of its process group
/// (setsid) keep running until the session closes. Not copyable.
///
/// Lifetime: destroying the session closes it (as close(nullptr)); it may be
/// destroyed at any time on the loop thread, also from a callback of one of
/// its commands. The loop must keep running until the close has finished.
class SandboxSession {
 public:
  virtual ~SandboxSession() = default;
  /// Starts a command: `cmd`'s argv, env, cwd, timeout and kill_grace; its
  /// isolation is ignored (the session's stands). Same contract as
  /// Sandbox::spawn: on error returns it and fires no callback (the session
  /// is closed or its helper died: the message says which); else on_exit
  /// fires exactly once. A program that cannot be started inside ends with
  /// exit status 127 and the reason in its output, as in a shell.
  virtual Result<Process*> exec(const ExecSpec& cmd, ExecCallbacks callbacks) = 0;
  /// Ends the session: every process in it is killed (commands still
  /// running end with `killed`), limits and forwards are released, then
  /// `done` (may be null) is called on the loop. Once; later calls ignored.
  virtual void close(std::function<void()> done) = 0;
  /// Why no further command can start (the helper died, the session is
  /// closed), or empty.
  virtual std::string problem() const = 0;
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;
  /// Starts `spec` on `loop`. On error returns it and fires no callback; on
  /// success fires on_exit exactly once, on the loop thread. A program the
  /// namespace backend cannot start inside its sandbox (not found, not
  /// executable) is not an error here: it ends with status 127 and the
  /// reason in its output, as in a shell. The namespace backend builds the
  /// sandbox off the loop thread, so a sandbox that cannot be set up (a
  /// mount refused, namespaces not allowed) also ends the command, with
  /// status 127 and the reason in ExitInfo::failure; nothing of it ran.
  /// The Sandbox must outlive the processes it started.
  virtual Result<Process*> spawn(uv_loop_t* loop, const ExecSpec& spec, ExecCallbacks callbacks) = 0;
  /// Opens a session whose commands are isolated as `base.isolation` says
  /// (its argv, env, cwd and timeout are not used). The namespace backend
  /// builds the sandbox once, here, around a small helper that starts each
  /// command (docs/sandbox.md, "Sessions"); the local backend spawns per
  /// command. The Sandbox must outlive the session.
  virtual Result<std::unique_ptr<SandboxSession>> open_session(uv_loop_t* loop, const ExecSpec& base) = 0;
  virtual std::string_view kind() const = 0;
  /// Why this backend cannot run anything on this host; empty when it can.
  /// The engine refuses to start or resume a run on a backend that says why
  /// not, so no step silently falls back to weaker isolation.
  virtual std::string_view unavailable() const { return {}; }
  /// Where the granted programs of one step attempt run (jail.h): an
  /// isolating backend prepares a jail around `spec`, as the same host
  /// user its sandboxes of that workspace run as; the local backend (whose
  /// steps are on the host already) gives Jail::host().
  virtual Result<std::shared_ptr<const Jail>> prepare_jail(const JailSpec& spec) {
    (void)spec;
    return Jail::host();
  }
};

/// The host itself: no isolation. For trusted runs inside an already
/// isolated runner.
std::unique_ptr<Sandbox> make_local_sandbox();

/// New user, mount, pid, net (unless Network::host), ipc, uts and cgroup
/// namespaces around each command; see docs/sandbox.md. Fails when the host
/// does not allow unprivileged user namespaces, with the reason.
/// Without `one_command`, what serves later sandboxes (a prepared root,
/// network namespaces in reserve, an unprivileged engine's held user
/// namespace) is made when the second sandbox is planned; the first builds
/// its own. `one_command`: a sandbox for a process that runs one command and
/// exits (`hearth sandbox run`): its spawn clones on the calling thread,
/// which waits while the child builds its root, and nothing is made ahead
/// at all: the one command builds its own, as a sandbox does where the host
/// refuses those. Nor is the host probed for user namespaces first: where
/// the sandbox cannot be made, the spawn's failure gives the probe's reason.
Result<std::unique_ptr<Sandbox>> make_namespace_sandbox(bool one_command = false);

/// What every entry point (the CLI's commands, `hearth serve`, `hearth ci`,
/// the public Engine) runs workflows in unless they choose kind = "local":
/// the namespace backend, or, where this host cannot run it, a stand-in of
/// kind "namespace" whose unavailable() gives the reason and whose spawn and
/// open_session fail with it. Never the local backend.
std::unique_ptr<Sandbox> make_default_sandbox();

/// Why this host cannot run the namespace backend, or empty when it can
/// (probes a user namespace once; cached).
std::string namespace_support_problem();

/// Which limits of `iso` this host can enforce for the whole sandbox, and a
/// sentence for each that falls back or cannot be applied. Empty: all apply.
std::vector<std::string> limit_warnings(const Isolation& iso);

}  // namespace hearth::sandbox
