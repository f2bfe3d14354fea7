#include "sandbox/netns_pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hearth::sandbox {

namespace {

// A new network namespace with lo up, as a descriptor; the calling thread
// returns to `home` (its own namespace) before this returns. -1 on failure.
int make_one(int home) {
  if (::unshare(CLONE_NEWNET) != 0) return -1;
  int fd = bring_loopback_up() == 0 ? ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
  if (::setns(home, CLONE_NEWNET) != 0) {
    // Stuck in a namespace a sandbox may get: give up on the pool.
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
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
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (int fd : ready_) ::close(fd);
}

int NetnsPool::take() {
  std::unique_lock lock(mu_);
  if (failed_) return -1;
  if (!thread_.joinable()) {
    // No handler of the engine's may run on this thread: it starts with
    // every signal blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  int fd = -1;
  if (!ready_.empty()) {
    fd = ready_.front();
    ready_.erase(ready_.begin());
  }
  lock.unlock();
  wake_.notify_one();
  return fd;
}

void NetnsPool::run() noexcept {
  int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stop_ || ready_.size() < depth_; });
      if (stop_) break;
    }
    int fd = home >= 0 ? make_one(home) : -1;
    std::lock_guard lock(mu_);
    if (fd < 0) {
      failed_ = true;
      break;
    }
    ready_.push_back(fd);
  }
  if (home >= 0) ::close(home);
}

}  // namespace hearth::sandbox
