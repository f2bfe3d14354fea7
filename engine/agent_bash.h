// The `bash` tool of skill and prompt steps (agent/bash.h's contract): each
// call is `bash -c` in a fresh sandbox of the run's backend, built from the
// step's ExecSpec (its workspace, network, limits, granted commands and
// environment), so the agent's commands are isolated exactly as a `run`
// step's script. Nothing but the workspace persists between calls (/tmp and
// $HOME are new each time); the current directory does: an EXIT trap writes
// `pwd -P` to a file the engine reads after the command ends. A cwd outside
// the workspace is not kept (the next call starts at the workspace root).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "engine/agent/bash.h"
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
  /// Where the EXIT trap writes the final directory: on the host, and as the
  /// command sees it (the same path under the local backend).
  std::string cwd_file_host;
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
  uv_loop_t* loop_;
  SandboxBashOptions options_;
  std::string cwd_;
  std::shared_ptr<Call> call_;  // the call in progress
};

}  // namespace hearth::engine
