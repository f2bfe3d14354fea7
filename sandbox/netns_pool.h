// Private to sandbox/: network namespaces made ahead, as root, by a thread of
// their own. Creating a network namespace (registering its loopback device
// and its per-namespace sysctl tables) is the largest single cost of a
// sandbox's clone; a sandbox with network none or proxies enters a fresh one
// made here instead (setns), and the thread makes the next while the
// command runs.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
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
  /// Keeps up to `depth` namespaces ready; the thread starts at the first take().
  explicit NetnsPool(size_t depth = 2) : depth_(depth) {}
  /// Stops the thread and closes what was not taken.
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  /// A fresh network namespace (an O_CLOEXEC descriptor the caller owns and
  /// closes), or -1 when none is ready: the caller then creates one itself,
  /// as without the pool. Never blocks on the thread's work.
  int take();

 private:
  void run() noexcept;  // the thread

  const size_t depth_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<int> ready_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  bool failed_ = false;     // guarded by mu_: the thread could not make one and ended
  std::thread thread_;      // started by the first take()
};

}  // namespace hearth::sandbox
