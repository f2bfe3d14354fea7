// hearth::run_sandboxed (public API) over sandbox::Sandbox, the backends the
// engine runs steps in.
#include "hearth/sandbox.h"

#include <filesystem>

#include "sandbox/sandbox.h"
#include "sandbox/sizes.h"

namespace hearth {

namespace {

sandbox::ExecSpec exec_spec(const SandboxCommand& c) {
  sandbox::ExecSpec spec;
  spec.argv = c.argv;
  spec.env = c.env;
  sandbox::Isolation& iso = spec.isolation;
  iso.workspace = c.workspace;
  iso.network = c.network == SandboxCommand::Network::host      ? sandbox::Network::host
                : c.network == SandboxCommand::Network::proxies ? sandbox::Network::proxies
                                                                : sandbox::Network::none;
  for (auto& [port, socket] : c.forwards) iso.forwards.push_back({port, socket});
  iso.memory_bytes = c.memory_bytes;
  iso.pids = c.pids;
  iso.cpus = c.cpus;
  for (auto& b : c.binds) iso.binds.push_back({b.path, "", b.writable});
  spec.timeout = c.timeout;
  // A command run by hand: a short grace between SIGTERM and SIGKILL.
  spec.kill_grace = std::chrono::milliseconds(500);
  spec.cwd = c.cwd;
  if (spec.cwd.empty() && !c.local) spec.cwd = sandbox::kWorkspaceInside;
  std::error_code ec;
  if (spec.cwd.empty()) spec.cwd = c.workspace.empty() ? std::filesystem::current_path(ec).string() : c.workspace;
  return spec;
}

}  // namespace

Result<SandboxExit> run_sandboxed(const SandboxCommand& command,
                                  const std::function<void(std::string_view chunk)>& on_output,
                                  const std::function<void(const std::string& warning)>& on_warning) {
  sandbox::ExecSpec spec = exec_spec(command);
  std::unique_ptr<sandbox::Sandbox> box;
  if (command.local) {
    box = sandbox::make_local_sandbox();
  } else {
    auto made = sandbox::make_namespace_sandbox(/*one_command=*/true);  // nothing else on this loop
    if (!made) return made.error();
    box = std::move(*made);
    if (on_warning)
      for (auto& w : sandbox::limit_warnings(spec.isolation)) on_warning(w);
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  sandbox::ExitInfo exit;
  sandbox::ExecCallbacks cb;
  cb.on_output = [&](std::string_view chunk) {
    if (on_output) on_output(chunk);
  };
  cb.on_exit = [&](const sandbox::ExitInfo& e) { exit = e; };
  auto p = box->spawn(&loop, spec, std::move(cb));
  if (!p) {
    uv_loop_close(&loop);
    return p.error();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (!exit.failure.empty()) return Error{exit.failure};  // the sandbox could not be set up: nothing ran
  return SandboxExit{static_cast<int>(exit.exit_status), exit.timed_out};
}

Result<uint64_t> parse_size(std::string_view text) { return sandbox::parse_size(text); }

}  // namespace hearth
