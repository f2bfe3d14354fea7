#include "sandbox/netns_pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hearth::sandbox {

namespace {

struct MadeNetns {
  int fd = -1;  // written by the child
};

// In a child born in a new network namespace, sharing this memory and this
// descriptor table (CLONE_VM | CLONE_FILES): brings lo up and opens the
// namespace into the shared table. Only system calls; signals stay blocked.
int make_child(void* arg) noexcept {
  auto* made = static_cast<MadeNetns*>(arg);
  if (bring_loopback_up() != 0) _exit(1);
  made->fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  _exit(made->fd >= 0 ? 0 : 1);
}

// A new network namespace with lo up, as a descriptor; -1 on failure.
int make_one() {
  MadeNetns made;
  alignas(16) char stack[16 * 1024];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = ::clone(make_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_NEWNET | SIGCHLD,
                    &made);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return made.fd;
  if (made.fd >= 0) ::close(made.fd);
  return -1;
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

NetnsPool::~NetnsPool() {
  for (int fd : ready_) ::close(fd);
}

int NetnsPool::take() {
  if (ready_.empty()) return -1;
  int fd = ready_.back();
  ready_.pop_back();
  return fd;
}

void NetnsPool::refill() {
  while (!failed_ && ready_.size() < depth_) {
    int fd = make_one();
    if (fd < 0) failed_ = true;
    else ready_.push_back(fd);
  }
}

}  // namespace hearth::sandbox
