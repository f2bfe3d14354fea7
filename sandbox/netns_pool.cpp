#include "sandbox/netns_pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "sandbox/passed_fds.h"

namespace hearth::sandbox {

namespace {

constexpr size_t kMakerStack = 64 * 1024;
constexpr int kMakerSocket = 3;  // the maker's only descriptor
constexpr char kWant = 'n';      // engine -> maker: one namespace, please
constexpr char kMade = 'm';      // maker -> engine, with the namespace

struct MakerStart {
  int socket;    // the maker's end
  int userns;    // >= 0: the user namespace to make them in (entered first)
  pid_t parent;  // the engine, to notice it died before PR_SET_PDEATHSIG
};

// In the maker: a new network namespace with lo up, opened; -1 on failure.
int make_one() {
  if (::unshare(CLONE_NEWNET) != 0 || bring_loopback_up() != 0) return -1;
  return ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

// In the maker: sends `ns` as the answer to one request.
bool send_made(int socket, int ns) {
  char byte = kMade;
  ssize_t n;
  while ((n = send_with_fd(socket, &byte, 1, ns)) < 0 && errno == EINTR) {
  }
  return n == 1;
}

// The maker's life, in a copy of the engine's memory made by clone without
// CLONE_VM while the engine blocked every signal. Only system calls (the
// engine may have had threads holding locks): no allocation, no stdio.
int maker_main(void* arg) noexcept {
  const auto* start = static_cast<const MakerStart*>(arg);
  int socket = start->socket;
  // No handler of the engine's may run here (libuv's would write to a
  // descriptor number that is now something else).
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // fails harmlessly for KILL, STOP
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != start->parent) _exit(1);
  ::prctl(PR_SET_NAME, "hearth-netns");
  ::setsid();  // a terminal's ^C is for the engine, which then closes the socket
  if (start->userns >= 0 && ::setns(start->userns, CLONE_NEWUSER) != 0) _exit(1);
  if (socket != kMakerSocket && ::dup3(socket, kMakerSocket, 0) != kMakerSocket) _exit(1);
  if (::close_range(0, kMakerSocket - 1, 0) != 0 || ::close_range(kMakerSocket + 1, ~0U, 0) != 0) _exit(1);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (;;) {
    char want = 0;
    ssize_t n = ::read(kMakerSocket, &want, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1 || want != kWant) _exit(0);  // EOF: the engine closed the pool
    int ns = make_one();
    if (ns < 0 || !send_made(kMakerSocket, ns)) _exit(1);  // the engine sees EOF and stops the pool
    ::close(ns);
  }
}

// Makers killed by a pool's destructor and not yet reaped, process-wide (an
// embedder may run several engines, on several threads). The destructor does
// not wait for the maker's exit (its teardown, a copy of the engine's page
// tables and its last namespace, took 0.5-10 ms on a loaded host, at the end
// of every run); a later pool reaps it, and at the engine's exit the kernel
// hands it to init, which does. Bounded: past kMaxUnreaped, stop() waits.
class Unreaped {
 public:
  /// Takes `pidfd` (killed) if there is room: true; else the caller waits.
  bool add(int pidfd) {
    std::lock_guard lock(mutex_);
    reap_exited_locked();
    if (count_ == kMaxUnreaped) return false;
    pidfds_[count_++] = pidfd;
    return true;
  }
  /// Reaps (and closes) those that have exited. Never blocks.
  void reap_exited() {
    std::lock_guard lock(mutex_);
    reap_exited_locked();
  }

 private:
  static constexpr size_t kMaxUnreaped = 16;
  void reap_exited_locked() {
    for (size_t i = 0; i < count_;) {
      siginfo_t info{};
      int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfds_[i]), &info, WEXITED | WNOHANG | __WALL);
      if (rc == 0 && info.si_pid == 0) {  // still exiting
        ++i;
        continue;
      }
      ::close(pidfds_[i]);  // reaped, or no longer ours to reap (ECHILD)
      pidfds_[i] = pidfds_[--count_];
    }
  }
  std::mutex mutex_;
  int pidfds_[kMaxUnreaped];
  size_t count_ = 0;
};

Unreaped& unreaped() {
  static Unreaped* u = new Unreaped;  // never destroyed: a pool may stop during static destruction
  return *u;
}

}  // namespace

int bring_loopback_up() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  int rc = ::ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    rc = ::ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int err = errno;
  ::close(s);
  errno = err;
  return rc;
}

NetnsPool::~NetnsPool() { stop(/*wait=*/false); }

int NetnsPool::take() {
  if (socket_ < 0 || asked_ == 0) return -1;
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(socket_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;  // not made yet
  std::vector<int> fds;
  if (n > 0) collect_passed_fds(msg, fds);
  if (n != 1 || byte != kMade || fds.size() != 1 || (msg.msg_flags & MSG_CTRUNC)) {
    for (int fd : fds) ::close(fd);
    stop();  // the maker died or failed: every sandbox makes its own from now on
    return -1;
  }
  --asked_;
  return fds[0];
}

void NetnsPool::refill() {
  if (stopped_) return;
  if (socket_ < 0 && !start_maker()) {
    stop();
    return;
  }
  while (asked_ < depth_) {
    ssize_t n = ::send(socket_, &kWant, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == 1) {
      ++asked_;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    stop();  // EPIPE: the maker is gone; EAGAIN cannot happen with so few bytes
    return;
  }
}

bool NetnsPool::start_maker() {
  unreaped().reap_exited();  // earlier pools' makers
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return false;
  // Its own stack: without CLONE_VM the maker runs on its copy of this
  // mapping, so the engine unmaps its own at once.
  void* stack = ::mmap(nullptr, kMakerStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    ::close(pair[0]);
    ::close(pair[1]);
    return false;
  }
  MakerStart start{pair[1], userns_fd_, ::getpid()};
  int pidfd = -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // No exit signal: libuv's SIGCHLD watcher never hears of it; stop() reaps it.
  pid_t pid = ::clone(maker_main, static_cast<char*>(stack) + kMakerStack, CLONE_PIDFD, &start, &pidfd);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kMakerStack);
  ::close(pair[1]);
  if (pid < 0) {
    ::close(pair[0]);
    return false;
  }
  socket_ = pair[0];
  maker_ = pidfd;
  return true;
}

void NetnsPool::stop(bool wait) {
  stopped_ = true;
  asked_ = 0;
  if (socket_ >= 0) ::close(socket_);  // the maker's EOF; the namespaces not taken go with it
  socket_ = -1;
  if (maker_ < 0) return;
  // Through the pidfd, so no other process can be hit even if the maker
  // was reaped elsewhere.
  ::syscall(SYS_pidfd_send_signal, maker_, SIGKILL, nullptr, 0);
  if (!wait && unreaped().add(maker_)) {
    maker_ = -1;
    return;
  }
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(maker_), &info, WEXITED | __WALL) < 0 &&
         errno == EINTR) {
  }
  ::close(maker_);
  maker_ = -1;
}

}  // namespace hearth::sandbox
