// One command in the sandbox a step's command runs in (part of libhearth's
// public API): what `hearth sandbox run` does, for a program that wants to
// run a command isolated without a workflow. docs/sandbox.md describes the
// namespace sandbox; docs/cli.md, `hearth sandbox run`, the same options.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/export.h"
#include "hearth/status.h"

namespace hearth {

struct SandboxCommand {
  /// argv[0] is looked up on the sandbox's PATH when it has no '/'.
  std::vector<std::string> argv;
  /// The command's whole environment, "NAME=value"; nothing else is passed.
  std::vector<std::string> env;
  /// Empty: /workspace inside the namespace sandbox; with `local`, the
  /// workspace, else the current directory.
  std::string cwd;
  /// Absolute host directory mounted read-write at /workspace; empty: an
  /// empty tmpfs.
  std::string workspace;
  /// none: loopback only; proxies: loopback and `forwards`; host: the host's network.
  enum class Network { none, proxies, host } network = Network::none;
  /// 127.0.0.1:PORT inside leads to the host's listening Unix socket (an
  /// absolute path); needs Network::proxies.
  std::vector<std::pair<uint16_t, std::string>> forwards;
  std::optional<uint64_t> memory_bytes;  // the whole sandbox (cgroup), else per process
  std::optional<uint64_t> pids;          // processes at once
  std::optional<double> cpus;            // CPU share, in CPUs (cgroup only)
  /// Host paths (absolute) bound at the same path inside; read-only unless writable.
  struct Bind {
    std::string path;
    bool writable = false;
  };
  std::vector<Bind> binds;
  /// The whole sandbox is killed after this long.
  std::optional<std::chrono::milliseconds> timeout;
  /// The local backend (no isolation at all), for comparison.
  bool local = false;
};

struct SandboxExit {
  int exit_status = 0;     // the command's exit code, 128+signal when a signal ended it
  bool timed_out = false;  // the timeout fired and the sandbox was killed
};

/// Runs `command` in a fresh sandbox on a loop of its own and waits for it.
/// `on_output` gets its stdout and stderr merged, in chunks (the view is
/// valid during the call only); `on_warning` (may be empty) a sentence for
/// each limit this host cannot enforce for the whole sandbox, before the
/// command starts. The error says why the sandbox could not be made (no user
/// namespaces here, with what to do) or the command not started; nothing
/// ran then. A program that is not found (or not executable) inside the
/// sandbox is not an error: it ends with status 127 and the reason in its
/// output, as in a shell. Blocks until the command has ended (it runs a loop of its
/// own): not for a host's loop thread.
HEARTH_API Result<SandboxExit> run_sandboxed(const SandboxCommand& command,
                                             const std::function<void(std::string_view chunk)>& on_output,
                                             const std::function<void(const std::string& warning)>& on_warning = {});

/// A size as a workflow's [sandbox] memory takes it: a whole number with K,
/// M, G or T (powers of 1024) or B; at least 1M, at most 1T.
HEARTH_API Result<uint64_t> parse_size(std::string_view text);

}  // namespace hearth
