// Private to sandbox/: network namespaces made ahead, as root. Creating a
// network namespace (registering its loopback device and its per-namespace
// sysctl tables) is the largest single cost of a sandbox's clone; a sandbox
// with network none or proxies enters a fresh one made here instead
// (setns), and the next is made once that sandbox's command runs, while it
// runs, rather than while the step waits. No thread: the engine's loop
// thread makes them (a host embedding the engine gets no thread of ours).
#pragma once

#include <cstddef>
#include <vector>

namespace hearth::sandbox {

/// Brings `lo` up in the caller's network namespace: 0, or -1 with errno.
/// Async-signal-safe (the sandbox's child calls it too).
int bring_loopback_up();

/// Each namespace is fresh (nothing has run in it), has `lo` up, and is
/// handed out once. Only as root (CAP_SYS_ADMIN in the host's user
/// namespace): an unprivileged sandbox's network namespace must belong to its
/// own user namespace, made by its clone.
class NetnsPool {
 public:
  /// Keeps up to `depth` namespaces ready.
  explicit NetnsPool(std::size_t depth = 1) : depth_(depth) {}
  /// Closes what was not taken.
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  /// A fresh network namespace (an O_CLOEXEC descriptor the caller owns and
  /// closes), or -1 when none is ready: the caller then creates one itself,
  /// as without the pool.
  int take();

  /// Makes namespaces until `depth` are ready: a short-lived child each
  /// (about a millisecond; the caller waits). Call it off a command's
  /// critical path, once the command runs. After a failure the pool stays
  /// empty for good (every take() returns -1).
  void refill();

 private:
  const std::size_t depth_;
  std::vector<int> ready_;
  bool failed_ = false;
};

}  // namespace hearth::sandbox
