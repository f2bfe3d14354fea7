// `hearth sandbox run`: one command, isolated the way a step's command is
// (hearth::run_sandboxed, hearth/sandbox.h).
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "hearth/sandbox.h"

namespace hearth::cli {

namespace {

std::string absolute(const std::string& path) {
  std::error_code ec;
  return std::filesystem::absolute(path, ec).lexically_normal().string();
}

Status add_forwards(const SandboxRunArgs& a, SandboxCommand& c) {
  for (auto& f : a.forward) {
    auto eq = f.find('=');
    int port = eq == std::string::npos ? 0 : std::atoi(f.substr(0, eq).c_str());
    if (port < 1 || port > 65535 || f.substr(0, eq) != std::to_string(port))
      return Error{"--forward " + f + ": expected PORT=SOCKET, like 8080=/run/api.sock"};
    c.forwards.emplace_back(static_cast<uint16_t>(port), absolute(f.substr(eq + 1)));
  }
  return {};
}

Status add_limits(const SandboxRunArgs& a, SandboxCommand& c) {
  if (!a.memory.empty()) {
    auto m = parse_size(a.memory);
    if (!m) return Error{"--memory: " + m.message()};
    c.memory_bytes = *m;
  }
  if (a.pids > 0) c.pids = static_cast<uint64_t>(a.pids);
  if (a.cpus > 0) c.cpus = a.cpus;
  if (!a.timeout.empty()) {
    auto t = parse_duration(a.timeout);
    if (!t) return Error{"--timeout: " + t.message()};
    c.timeout = *t;
  }
  return {};
}

Result<SandboxCommand> build_command(const SandboxRunArgs& a) {
  SandboxCommand c;
  c.argv = a.command;
  c.local = a.local;
  std::error_code ec;
  if (!a.workspace.empty()) {
    c.workspace = absolute(a.workspace);
    if (!std::filesystem::is_directory(c.workspace, ec)) return Error{"--workspace " + a.workspace + ": not a directory"};
  }
  c.network = a.network == "host" ? SandboxCommand::Network::host : SandboxCommand::Network::none;
  if (a.network == "proxies" || !a.forward.empty()) {
    if (a.network == "host") return Error{"--forward needs its own network namespace, not --network host"};
    c.network = SandboxCommand::Network::proxies;
  }
  if (auto s = add_forwards(a, c); !s.ok()) return s.error();
  if (auto s = add_limits(a, c); !s.ok()) return s.error();
  for (auto* list : {&a.ro, &a.rw})
    for (auto& path : *list) {
      auto abs = absolute(path);
      if (!std::filesystem::exists(abs, ec)) return Error{(list == &a.ro ? "--ro " : "--rw ") + path + ": no such file or directory"};
      c.binds.push_back({abs, list == &a.rw});
    }
  c.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/hearth", "LANG=C.UTF-8"};
  if (const char* term = std::getenv("TERM")) c.env.push_back(std::string("TERM=") + term);
  for (auto& e : a.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') return Error{"--env " + e + ": expected NAME=VALUE"};
    c.env.push_back(e);
  }
  return c;
}

}  // namespace

int command_sandbox_run(const SandboxRunArgs& args) {
  auto command = build_command(args);
  if (!command) {
    std::cerr << "hearth sandbox run: " << command.message() << "\n";
    return kExitUsage;
  }
  auto exit = run_sandboxed(
      *command,
      [](std::string_view chunk) { std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size())).flush(); },
      [](const std::string& w) { std::cerr << "hearth sandbox run: warning: " << w << "\n"; });
  if (!exit) {
    std::cerr << "hearth sandbox run: " << exit.message() << "\n";
    return kExitRunFailed;
  }
  if (exit->timed_out) {
    std::cerr << "hearth sandbox run: timed out after " << args.timeout << "; the sandbox was killed\n";
    return 124;
  }
  return exit->exit_status;
}

}  // namespace hearth::cli
