// The `bash` tool on the host, for tests and development: each call is
// `bash -c` spawned with uv_spawn in its own session (process group), in a
// host folder that plays the workspace. NOT a sandbox: the command sees the
// whole machine and the engine's environment. The engine replaces it with
// the namespace sandbox's session; the contract (bash.h) is the same.
//
// The session's cwd is kept as the agent sees it: the host folder `root`
// reads as `mount` ("/workspace"), so a checkpointed cwd means the same in
// either implementation. After each call the shell reports its final
// directory (`pwd -P` from an EXIT trap, on a pipe of its own); a command that
// replaces the EXIT trap, or is killed, leaves the cwd unchanged.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "agent/bash.h"

namespace hearth::agent {

struct LocalBashOptions {
  /// How the agent names `root` (the same as WorkspaceOptions::mount).
  std::string mount = "/workspace";
  /// The commands' environment ("NAME=value"); empty: the engine's own.
  std::vector<std::string> env;
  /// After the command exits, how long to wait for output still held open
  /// by something it started outside its process group.
  uint64_t drain_ms = 500;
};

class LocalBashSession final : public BashSession {
 public:
  /// `root`: an existing host directory (resolved to its real path); the cwd
  /// starts there. `loop` must outlive the session and any call it started.
  LocalBashSession(uv_loop_t* loop, const std::string& root, LocalBashOptions options = {});
  /// A call in progress is killed and its `done` called with "cancelled"
  /// before this returns; its handles close later on the loop.
  ~LocalBashSession() override;
  LocalBashSession(const LocalBashSession&) = delete;
  LocalBashSession& operator=(const LocalBashSession&) = delete;

  void run(const nlohmann::json& args, std::function<void(ToolResult)> done) override;
  const std::string& cwd() const override { return cwd_; }
  void restore_cwd(const std::string& cwd) override { cwd_ = cwd; }
  void cancel() override;

  /// The host path of an agent-side path (under `mount` → under root).
  std::string host_path(const std::string& inside) const;
  /// The agent-side path of a host path (under root → under `mount`).
  std::string inside_path(const std::string& host) const;
  const std::string& root() const { return root_; }

 private:
  struct Call;  // one running command; owns its handles and deletes itself
  friend struct Call;

  uv_loop_t* loop_;
  std::string root_;
  LocalBashOptions options_;
  std::string cwd_;
  Call* call_ = nullptr;  // the call in progress; it clears this when done
};

}  // namespace hearth::agent
