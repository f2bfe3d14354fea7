// Private to sandbox/: network namespaces made ahead. Creating a
// network namespace (registering its loopback device and its per-namespace
// sysctl tables) is the largest single cost of a sandbox's clone; a sandbox
// with network none or proxies enters a fresh one made here instead (setns).
//
// Who makes them: the netns maker, a small child process the pool starts at
// its first refill() (so only once a sandbox needed a network namespace).
// The engine never waits for it:
//   - refill() writes one byte per namespace wanted, keeping `depth`
//     requests in flight (asked for and not yet taken);
//   - the maker, for each byte, unshares a new network namespace, brings
//     `lo` up, and sends a descriptor of it back (SCM_RIGHTS), then closes
//     its own and waits for the next byte;
//   - take() reads one answer without blocking: a namespace if one has
//     arrived, otherwise -1 and the sandbox's clone makes its own, as
//     without the pool.
// No thread and no loop handle: the descriptors wait in the socket until a
// take(), so an embedding host's loop gains neither (the maker is a process,
// not a thread). Why a process at all: made on the loop thread, a namespace
// cost ≈ 1–2 ms during which the exit of the command just started went
// unnoticed (docs/performance.md, sandbox section).
//
// The maker is a copy of the engine made without CLONE_VM (like fork, but
// without atfork handlers and with no SIGCHLD at its end, so libuv's child
// watcher never sees it). In it only system calls run: it resets every
// signal disposition, leaves the engine's session, closes every descriptor
// but its socket, dies with the thread that started it (PR_SET_PDEATHSIG)
// and exits at EOF. It runs nothing in the namespaces it makes, and each is
// sent once; a sandbox closes its descriptor once it entered it. It shares
// the engine's pages copy-on-write and writes none of them; pages the engine
// rewrites later are copied once (at most the engine's size at the start).
//
// The maker ends with the pool: killed, and reaped later (~NetnsPool).
//
// Failure is never the user's: if the maker cannot start, reports a
// failure, or dies (killed, out of namespaces), the pool stops for good and
// every take() returns -1.
#pragma once

#include <cstddef>

namespace hearth::sandbox {

/// Brings `lo` up in the caller's network namespace: 0, or -1 with errno.
/// Async-signal-safe (the sandbox's child and the maker call it).
int bring_loopback_up();

/// Each namespace is fresh (nothing has run in it), has `lo` up, and is
/// handed out once. As root they belong to the host's user namespace; an
/// unprivileged engine passes its held user namespace (idmap.h,
/// make_held_user_namespace), which the maker enters first, so they belong
/// to it: the sandbox's first process, in that namespace too, may enter
/// them, and the command (in a user namespace nested below it) holds no
/// capability over them. Used on one thread.
class NetnsPool {
 public:
  /// Keeps up to `depth` namespaces asked for or ready. Two: a scheduling
  /// pass that starts several steps at once finds more than one.
  /// `userns_fd` (not taken; must outlive the pool): -1 as root, else the
  /// user namespace the maker makes them in.
  explicit NetnsPool(std::size_t depth = 2, int userns_fd = -1) : depth_(depth), userns_fd_(userns_fd) {}
  /// Closes the socket (with it, what was not taken) and kills the maker
  /// (SIGKILL: it runs nothing more) without waiting for its exit: a later
  /// pool reaps it, or, once the engine has exited, init does.
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  /// A fresh network namespace (an O_CLOEXEC descriptor the caller owns and
  /// closes), or -1 when none has arrived yet or the pool has stopped: the
  /// caller then creates one itself. Never blocks.
  int take();

  /// Asks the maker (started here the first time) for namespaces until
  /// `depth` are asked for or ready. Never waits for them. Call it once a
  /// command runs.
  void refill();

 private:
  bool start_maker();
  /// For good. `wait`: reap the maker before returning (the maker failed
  /// or was killed: it is exiting already); otherwise it is reaped later.
  void stop(bool wait = true);

  const std::size_t depth_;
  const int userns_fd_;
  int socket_ = -1;       // the engine's end; -1 before the maker starts
  int maker_ = -1;        // the maker's pidfd; killed by stop(), reaped there or later
  std::size_t asked_ = 0; // requests written, answers not yet read
  bool stopped_ = false;
};

}  // namespace hearth::sandbox
