// The broker: the engine-side end of granted commands. It listens on one
// Unix socket per step attempt (bound into that step's sandbox, so a
// connection on it is that step), and for each connection:
//
//   1. reads the shim's request (protocol.h): argv, cwd, a few env vars;
//   2. finds the command by argv[0] among the step's grants and decides the
//      call with its policy (policy.h) — a refusal is written back as stderr
//      and exit status 126;
//   3. checks path arguments and resolves cwd inside the workspace (paths.h);
//   4. starts the real program in the attempt's jail (sandbox/jail.h: the
//      host read-only but for the workspace, as the run's unprivileged id
//      when the engine is root), in its own session, in the workspace's host
//      directory, with exactly the command's environment (its secrets and
//      declared env, never the engine's own);
//   5. streams stdin in and stdout/stderr back, every secret redacted
//      (redact.h), enforces the timeout, and ends with the exit frame.
// If the shim goes away first (killed, crashed), the program's whole process
// group is killed: nothing the sandbox started outlives it on the host.
//
// Path arguments and the call's directory are checked physically (paths.h);
// so is a call while the workspace holds a configuration file the program
// would read (GrantedCommand::workspace_config_files). A granted git's push
// never runs in the workspace (git_push.h).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "commands/git_push.h"
#include "commands/policy.h"
#include "commands/redact.h"
#include "sandbox/jail.h"
#include "util/status.h"

namespace hearth::commands {

/// A call of a command the engine's host implements in its own process
/// (GrantedCommand::host), after the same checks a program's call gets.
struct HostCall {
  std::vector<std::string> argv;  // argv[0] = the name; path arguments as host paths, like a program's
  std::string cwd;                // host directory the call was made in (inside the workspace)
  std::string input;              // the call's whole stdin (at most kHostInputMax bytes)
};
struct HostReply {
  int exit_code = 0;
  std::string out, err;  // stdout and stderr (redacted before they reach the shim)
};
/// Called on the broker's loop once the call's stdin has ended; calls
/// `reply` once, then or later. A reply after the call ended (timed out,
/// shim gone, broker closed) is dropped.
using HostHandler = std::function<void(const HostCall&, std::function<void(HostReply)> reply)>;
/// Most stdin a host command receives; a call sending more fails (exit 1).
inline constexpr size_t kHostInputMax = 1 << 20;

/// A command as granted to one step, ready to run.
struct GrantedCommand {
  std::string name;                 // as called inside the sandbox ("gh")
  std::string exec;                 // absolute path of the real program on the host
  Policy policy;
  std::vector<std::string> env;     // the program's complete environment, "NAME=value"
  std::chrono::milliseconds timeout{60000};
  /// Files the program reads as its own configuration from the directory
  /// it runs in or one above it (npm: ".npmrc"). The step can write those,
  /// so a call is refused while one exists there, from the call's directory
  /// up to the workspace's root.
  std::vector<std::string> workspace_config_files;
  /// Set: the call is answered by this handler, not by running `exec`.
  HostHandler host;
  /// The program is git: options before its subcommand are refused, `{branch}`
  /// is read (and validated) from the workspace at each call, and `push` runs
  /// from the broker's own git directory to `push.remote_url` (git_push.h).
  bool git = false;
  GitPushTarget push;
  /// Put before the call's arguments (npm: --ignore-scripts).
  std::vector<std::string> leading_args;
  /// A call with an argument starting with one of these is refused: options
  /// that would undo `leading_args` (npm: --ig, --no-ig).
  std::vector<std::string> refused_options;
};

/// What the journal records of one call. Every string is already redacted.
struct Invocation {
  uint64_t sequence = 0;            // 1, 2, ... per broker
  std::string command;
  std::vector<std::string> argv;    // as asked, argv[0] = command name
  std::string cwd;                  // relative to the workspace
  int64_t started_at_ms = 0;
  bool allowed = false;
  std::string rule;                 // the pattern that decided
  int exit_code = -1;               // 126 when refused; 128+N when killed by signal N
  bool timed_out = false;
  bool shim_gone = false;           // the shim disconnected before the program ended
  int64_t output_bytes = 0;         // stdout + stderr as sent back (redacted)
  std::string output_sha256;        // of that output, hex
  std::string output_tail;          // its last bytes
};

struct BrokerOptions {
  /// Created; must not exist. Put it in a directory only the engine's uid
  /// can enter (0700): whoever can connect to it can use the grants. A
  /// namespace sandbox reaches it through a bind mount as the same host uid.
  std::string socket_path;
  std::string workspace;            // host directory that is /workspace inside
  std::vector<GrantedCommand> commands;
  std::shared_ptr<const SecretSet> secrets;  // every secret of every command of the step
  DecisionContext context;
  /// Where programs run (sandbox/jail.h); null: on the host, as the engine.
  std::shared_ptr<const sandbox::Jail> jail;
  std::chrono::milliseconds kill_grace{2000};
  /// Intent: called before a granted program starts (and for a refusal).
  /// Return an error to refuse the call (the journal could not record it).
  std::function<Status(const Invocation&)> on_started;
  /// Durability of the intent: when set, an allowed call's program (or
  /// handler) starts only once this hook calls `then` with ok, after
  /// on_started's record is safe on disk; with an error the call is refused.
  /// The shim's further input waits meanwhile. Null: it starts at once.
  std::function<void(std::function<void(const Status&)> then)> when_recorded;
  /// Outcome: called once the call has ended.
  std::function<void(const Invocation&)> on_finished;
};

class Broker {
 public:
  /// Starts listening. The broker lives until close() completes. Sets
  /// SIGPIPE to ignored if it has its default action (a program that closes
  /// its stdin early must not end the engine).
  static Result<Broker*> start(uv_loop_t* loop, BrokerOptions options);
  /// Stops accepting, kills running programs, closes every connection, then
  /// calls `closed` (may be null) and frees itself.
  virtual void close(std::function<void()> closed) = 0;
  /// Calls in progress.
  virtual size_t active() const = 0;

 protected:
  virtual ~Broker() = default;
};

/// The in-sandbox side: hearth-shim run under a granted command's name. Sends
/// argv, cwd and stdin to the broker at `socket_path`, copies its output to
/// fds 1 and 2, and returns the program's exit status (or 127 when the
/// broker cannot be reached). `workspace_root` is the sandbox path the cwd is
/// made relative to ("/workspace").
int run_shim(int argc, char** argv, const std::string& socket_path, const std::string& workspace_root);

}  // namespace hearth::commands
