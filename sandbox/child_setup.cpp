#include "sandbox/child_setup.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hearth::sandbox::child_setup {

namespace {

bool write_file(const char* path, const char* data) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = std::strlen(data);
  bool ok = ::write(fd, data, len) == static_cast<ssize_t>(len);
  int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

}  // namespace

std::unique_lock<std::mutex> one_child_at_a_time() {
  static std::mutex mu;
  if (::geteuid() == 0) return {};  // root's children open root's /proc files whatever the flag says
  return std::unique_lock(mu);
}

int write_id_maps(const char* uid_map, const char* gid_map) {
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  bool ok = (write_file("/proc/self/setgroups", "deny") || errno == ENOENT) &&
            write_file("/proc/self/uid_map", uid_map) && write_file("/proc/self/gid_map", gid_map);
  int err = errno;
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  errno = err;
  return ok ? 0 : -1;
}

int enter_user_namespace(int fd) { return fd < 0 ? 0 : ::setns(fd, CLONE_NEWUSER); }

int last_capability() {
  int fd = ::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 63;
  char buf[16] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  int last = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) last = last * 10 + (buf[i] - '0');
  return n > 0 && last > 0 && last <= 63 ? last : 63;
}

int drop_privileges(Identity who) {
  for (int cap = 0; cap <= who.last_cap; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1;
  if (who.switch_ids) {
    int death_signal = 0;
    ::prctl(PR_GET_PDEATHSIG, &death_signal, 0, 0, 0);
    if (syscall(SYS_setgroups, 0, nullptr) != 0) return -1;
    if (syscall(SYS_setresgid, who.gid, who.gid, who.gid) != 0) return -1;
    if (syscall(SYS_setresuid, who.uid, who.uid, who.uid) != 0) return -1;
    if (death_signal != 0 && ::prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0) return -1;
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  return static_cast<int>(syscall(SYS_capset, &header, data));
}

int no_new_privs() { return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

int new_session() { return ::setsid() < 0 ? -1 : 0; }

int set_stdio(const int fds[3]) {
  int high[3];
  for (int i = 0; i < 3; ++i) {
    high[i] = ::fcntl(fds[i], F_DUPFD, 3);
    if (high[i] < 0) return -1;
  }
  for (int i = 0; i < 3; ++i)
    if (::dup2(high[i], i) < 0) return -1;
  for (int fd : high) ::close(fd);
  return 0;
}

int close_inherited() { return ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); }

void default_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
}

void unblock_signals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace hearth::sandbox::child_setup
