// `hearth sandbox run`: one command, isolated the way a step's command is.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/cli.h"
#include "sandbox/sizes.h"
#include "sandbox/sandbox.h"
#include "workflows/duration.h"

namespace hearth::cli {

namespace {

Result<sandbox::ExecSpec> build_spec(const SandboxRunArgs& a) {
  sandbox::ExecSpec spec;
  spec.argv = a.command;
  auto& iso = spec.isolation;
  std::error_code ec;
  if (!a.workspace.empty()) {
    auto ws = std::filesystem::absolute(a.workspace, ec).lexically_normal().string();
    if (!std::filesystem::is_directory(ws, ec)) return Error{"--workspace " + a.workspace + ": not a directory"};
    iso.workspace = ws;
  }
  iso.network = a.network == "host" ? sandbox::Network::host : sandbox::Network::none;
  if (a.network == "proxies" || !a.forward.empty()) {
    if (a.network == "host") return Error{"--forward needs its own network namespace, not --network host"};
    iso.network = sandbox::Network::proxies;
  }
  for (auto& f : a.forward) {
    auto eq = f.find('=');
    int port = eq == std::string::npos ? 0 : std::atoi(f.substr(0, eq).c_str());
    if (port < 1 || port > 65535 || f.substr(0, eq) != std::to_string(port))
      return Error{"--forward " + f + ": expected PORT=SOCKET, like 8080=/run/api.sock"};
    auto sock = std::filesystem::absolute(f.substr(eq + 1), ec).lexically_normal().string();
    iso.forwards.push_back({static_cast<uint16_t>(port), sock});
  }
  if (!a.memory.empty()) {
    auto m = sandbox::parse_size(a.memory);
    if (!m) return Error{"--memory: " + m.message()};
    iso.memory_bytes = *m;
  }
  if (a.pids > 0) iso.pids = static_cast<uint64_t>(a.pids);
  if (a.cpus > 0) iso.cpus = a.cpus;
  if (!a.timeout.empty()) {
    auto t = workflows::parse_duration(a.timeout);
    if (!t) return Error{"--timeout: " + t.message()};
    spec.timeout = *t;
  }
  spec.kill_grace = std::chrono::milliseconds(500);
  for (auto* list : {&a.ro, &a.rw})
    for (auto& path : *list) {
      auto abs = std::filesystem::absolute(path, ec).lexically_normal().string();
      if (!std::filesystem::exists(abs, ec)) return Error{(list == &a.ro ? "--ro " : "--rw ") + path + ": no such file or directory"};
      iso.binds.push_back({abs, "", list == &a.rw});
    }
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/hearth", "LANG=C.UTF-8"};
  if (const char* term = getenv("TERM")) spec.env.push_back(std::string("TERM=") + term);
  for (auto& e : a.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') return Error{"--env " + e + ": expected NAME=VALUE"};
    spec.env.push_back(e);
  }
  spec.cwd = sandbox::kWorkspaceInside;
  if (a.local) spec.cwd = iso.workspace.empty() ? std::filesystem::current_path(ec).string() : iso.workspace;
  return spec;
}

}  // namespace

int command_sandbox_run(const SandboxRunArgs& args) {
  auto spec = build_spec(args);
  if (!spec) {
    std::cerr << "hearth sandbox run: " << spec.message() << "\n";
    return kExitUsage;
  }
  std::unique_ptr<sandbox::Sandbox> box;
  if (args.local) {
    box = sandbox::make_local_sandbox();
  } else {
    auto made = sandbox::make_namespace_sandbox();
    if (!made) {
      std::cerr << "hearth sandbox run: " << made.message() << "\n";
      return kExitRunFailed;
    }
    box = std::move(*made);
    for (auto& w : sandbox::limit_warnings(spec->isolation)) std::cerr << "hearth sandbox run: warning: " << w << "\n";
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  sandbox::ExitInfo exit;
  sandbox::ExecCallbacks cb;
  cb.on_output = [](std::string_view chunk) { std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size())).flush(); };
  cb.on_exit = [&](const sandbox::ExitInfo& e) { exit = e; };
  auto p = box->spawn(&loop, *spec, std::move(cb));
  if (!p) {
    std::cerr << "hearth sandbox run: " << p.message() << "\n";
    uv_loop_close(&loop);
    return kExitRunFailed;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (exit.timed_out) {
    std::cerr << "hearth sandbox run: timed out after " << args.timeout << "; the sandbox was killed\n";
    return 124;
  }
  return static_cast<int>(exit.exit_status);
}

}  // namespace hearth::cli
