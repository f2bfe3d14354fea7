// Processes and environment from a test's side: whether a process is gone,
// which host process runs a command line, this process's children, and
// environment variables set for a scope.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/files.h"

namespace hearth::testing {

/// Waits (up to 5 s) for `pid` to be gone or a zombie; false if it is still
/// running then. A signal is delivered at once but the process takes a moment
/// to die, so this waits on the fact rather than asserting it instantly.
inline bool process_gone(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (stat.empty() || (close != std::string::npos && stat.size() > close + 2 && stat[close + 2] == 'Z')) return true;
    usleep(10 * 1000);
  }
  return false;
}

/// The host pid of a process running with exactly this command line
/// ("sleep 4242"), or 0.
inline pid_t host_pid_with_cmdline(const std::string& cmdline) {
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::string c = read_file(e.path() / "cmdline");
    for (auto& ch : c)
      if (ch == '\0') ch = ' ';
    if (c == cmdline + " ") return std::atoi(name.c_str());
  }
  return 0;
}
/// True while some host process runs with exactly this command line: how a
/// test sees that a sandboxed process is gone.
inline bool host_process_with_cmdline(const std::string& cmdline) { return host_pid_with_cmdline(cmdline) != 0; }

/// The Uid: line of a host process's status ("Uid:\treal\teff\tsaved\tfs"), or "".
inline std::string host_uid_line(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("\nUid:");
  return at == std::string::npos ? "" : status.substr(at + 1, status.find('\n', at + 1) - at - 1);
}

/// A child of this process, as its /proc/PID/stat shows it.
struct Child {
  pid_t pid = 0;
  std::string name;  // comm
  char state = 0;    // 'Z' for a zombie
};

/// This process's children, zombies included.
inline std::vector<Child> children() {
  std::vector<Child> out;
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string pid = e.path().filename().string();
    if (pid.empty() || pid[0] < '0' || pid[0] > '9') continue;
    std::string stat = read_file(e.path() / "stat");
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || stat.size() < close + 4) continue;
    if (std::atoi(stat.c_str() + close + 4) != getpid()) continue;
    out.push_back({std::atoi(pid.c_str()), stat.substr(open + 1, close - open - 1), stat[close + 2]});
  }
  return out;
}

/// The pid of a child of this process whose name (comm) is `name`, or 0.
inline pid_t child_named(const std::string& name) {
  for (auto& c : children())
    if (c.name == name) return c.pid;
  return 0;
}

/// Sets environment variables of this process for a scope; restores them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (auto& [name, old] : saved_) old ? (void)setenv(name.c_str(), old->c_str(), 1) : (void)unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace hearth::testing
