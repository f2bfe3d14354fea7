// The `bash` tool of skill and prompt steps (agent/bash.h's contract). The
// calls of one attempt share one sandbox session of the run's backend
// (sandbox.h's SandboxSession), opened at the first call and closed when the
// attempt ends: built once from the step's ExecSpec (its workspace, network,
// limits, granted commands and environment), so the agent's commands are
// isolated exactly as a `run` step's script, and each call is `bash -c` in
// it. Files in /tmp and $HOME persist from one call to the next within the
// attempt, and so do processes a command detached from its process group
// (setsid); everything else a call started ends with it. A new attempt (a
// retry, a resumed step) starts with a fresh sandbox. The current directory
// persists too: an EXIT trap writes `pwd -P` to a file the engine reads
// after the command ends (never through a symlink; a file it cannot read
// safely is reported to the model and the cwd is not changed). A cwd outside
// the workspace is not kept (the next call starts at the workspace root). If
// the session's sandbox fails (its helper is killed), the call in progress
// fails and says so, and the next call starts a fresh sandbox and says that
// /tmp and $HOME were reset.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "agent/bash.h"
#include "sandbox/sandbox.h"

namespace hearth::engine {

struct SandboxBashOptions {
  sandbox::Sandbox* sandbox = nullptr;
  /// What every call starts from: environment, isolation, kill grace. argv,
  /// cwd and timeout are set per call.
  sandbox::ExecSpec base;
  /// The workspace on the host, and how the agent names it ("/workspace";
  /// the host path itself under the local backend).
  std::string host_root;
  std::string mount = sandbox::kWorkspaceInside;
  /// Where the EXIT trap writes the final directory: the file `cwd_file_name`
  /// in the attempt's own directory, open as `cwd_dir_fd` (borrowed: it must
  /// stay open while the session lives), and the file's path as the command
  /// sees it. The engine reads it through the descriptor only, as a regular
  /// file (util/safe_open.h): a symlink or FIFO planted there is refused.
  int cwd_dir_fd = -1;
  std::string cwd_file_name = "cwd";
  std::string cwd_file_inside;
  /// Applied to the text the model gets (secret values hidden). Null: none.
  std::function<std::string(std::string)> redact;
};

class SandboxBashSession final : public agent::BashSession {
 public:
  SandboxBashSession(uv_loop_t* loop, SandboxBashOptions options);
  /// A call in progress is killed and its `done` called with "cancelled".
  ~SandboxBashSession() override;
  SandboxBashSession(const SandboxBashSession&) = delete;
  SandboxBashSession& operator=(const SandboxBashSession&) = delete;

  void run(const nlohmann::json& args, std::function<void(agent::ToolResult)> done) override;
  const std::string& cwd() const override { return cwd_; }
  void restore_cwd(const std::string& cwd) override { cwd_ = cwd; }
  void cancel() override;

 private:
  struct Call;
  /// The session, opened by the first call (and again after it failed).
  /// Open: a note for the next result, or an error.
  Result<sandbox::SandboxSession*> session(std::string& note);

  uv_loop_t* loop_;
  SandboxBashOptions options_;
  std::string cwd_;
  std::shared_ptr<Call> call_;  // the call in progress
  /// Closed (its processes killed) when this object goes; declared after
  /// call_ so a running call is killed first.
  std::unique_ptr<sandbox::SandboxSession> box_;
};

}  // namespace hearth::engine
