// hearth-stepbox: the helper of a namespace session (docs/sandbox.md,
// "Sessions"). The engine starts it once, as the init of a sandbox built
// exactly as a command's, and asks it over its control socket (fd 1 at
// start; session_protocol.h) to start each command: posix_spawn in a
// session of its own, with the output pipe the engine passed along. It
// reports each command's wait status, kills a command's process group on
// request and when the command ends, and reaps whatever else ends (it is the
// pid namespace's init). When it dies, the kernel kills everything in the
// sandbox. Static and tiny: it needs nothing from the sandbox's /usr.
// (A one-shot command's init is hearth-init, init_main.cpp.)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "sandbox/passed_fds.h"
#include "sandbox/session_protocol.h"
#include "sandbox/spawn_child.h"
#include "util/write_all.h"

namespace proto = hearth::sandbox::session_protocol;

namespace {

int g_control = -1;
hearth::sandbox::Spawner g_spawner;  // what every command's spawn can skip (main sets it up)
std::map<pid_t, uint64_t> g_running;  // command pid (its process group) → id
std::map<uint64_t, pid_t> g_pids;

void report_exit(uint64_t id, int status) {
  proto::Header h;
  h.type = proto::exit;
  h.id = id;
  h.arg = status;
  if (!hearth::util::write_all(g_control, &h, sizeof h, true)) _exit(0);  // the engine is gone
}

// Reads exactly `len` bytes; any descriptors passed along are appended to
// `fds`. False at EOF or error.
bool read_exact(void* data, size_t len, std::vector<int>& fds) {
  auto* p = static_cast<char*>(data);
  while (len > 0) {
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    iovec iov{p, len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(g_control, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    hearth::sandbox::collect_passed_fds(msg, fds);
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Starts the command of a `run` body with `out_fd` as its output; a program
// that cannot start is reported as a shell would: a line, status 127.
void run(uint64_t id, const std::string& body, int out_fd) {
  uint32_t counts[3];
  if (body.size() < sizeof counts) _exit(3);
  std::memcpy(counts, body.data(), sizeof counts);
  std::vector<char*> strings;
  for (size_t pos = sizeof counts; pos < body.size();) {
    strings.push_back(const_cast<char*>(body.data() + pos));
    pos = body.find('\0', pos);
    if (pos == std::string::npos) _exit(3);
    ++pos;
  }
  size_t n_argv = counts[0], n_env = counts[1], n_cand = counts[2];
  if (n_argv == 0 || strings.size() != 1 + n_argv + n_env + n_cand) _exit(3);
  const char* cwd = strings[0];
  std::vector<char*> argv(strings.begin() + 1, strings.begin() + 1 + static_cast<long>(n_argv));
  argv.push_back(nullptr);
  std::vector<char*> env(strings.begin() + 1 + static_cast<long>(n_argv),
                         strings.begin() + 1 + static_cast<long>(n_argv + n_env));
  env.push_back(nullptr);
  std::vector<const char*> candidates(strings.end() - static_cast<long>(n_cand), strings.end());
  pid_t pid = 0;
  int rc = hearth::sandbox::spawn_first(candidates, cwd, argv.data(), env.data(), out_fd, &pid, g_spawner);
  if (rc != 0) {
    std::string line = std::string("hearth: cannot start '") + argv[0] + "' in " + cwd + " in the sandbox: " +
                       std::strerror(rc) + (rc == ENOENT ? " (not found on the PATH inside the sandbox, or no such directory)" : "") + "\n";
    (void)!::write(out_fd, line.data(), line.size());
    ::close(out_fd);
    report_exit(id, 127 << 8);
    return;
  }
  ::close(out_fd);  // the command holds its copies: EOF when they all close
  g_running[pid] = id;
  g_pids[id] = pid;
}

void read_request() {
  proto::Header h;
  std::vector<int> fds;
  if (!read_exact(&h, sizeof h, fds)) _exit(0);  // the engine closed the session
  std::string body(h.body_len, '\0');
  if (h.body_len > proto::kMaxBody || !read_exact(body.data(), body.size(), fds)) _exit(3);
  if (h.type == proto::run && fds.size() == 1) {
    run(h.id, body, fds[0]);
    return;
  }
  for (int fd : fds) ::close(fd);
  if (h.type == proto::signal) {
    auto it = g_pids.find(h.id);
    if (it != g_pids.end()) ::kill(-it->second, h.arg);  // ended already: nothing to do
    return;
  }
  _exit(3);  // not the engine's protocol
}

void reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = g_running.find(pid);
    if (it == g_running.end()) continue;  // an orphan that ended
    // Background children of the command end with it (ExecCallbacks::on_exit).
    ::kill(-pid, SIGKILL);
    uint64_t id = it->second;
    g_running.erase(it);
    g_pids.erase(id);
    report_exit(id, status);
  }
}

}  // namespace

int main() {
  g_control = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (g_control < 0 || null < 0 || ::dup2(null, 1) < 0 || ::dup2(null, 2) < 0) return 2;
  // Every disposition default, once here (the sandbox's child setup resets
  // them too; this keeps the helper right on its own), so each command's
  // spawn need not reset ~60 of them (the mask is still reset per spawn).
  // The raw system call: glibc's signal() refuses the two real-time signals
  // it reserves, which the engine's process may have ignored too.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  g_spawner = {null, true};
  // Commands run as the same user: they must not read this process's memory
  // or descriptors through /proc (ptrace is denied by seccomp as well).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Exec'd through a descriptor, its name would be that fd's number.
  ::prctl(PR_SET_NAME, "hearth-stepbox", 0, 0, 0);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sigfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) return 2;
  for (;;) {
    pollfd fds[2] = {{g_control, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 2;
    }
    if (fds[1].revents) {
      signalfd_siginfo info;
      while (::read(sigfd, &info, sizeof info) > 0) {
      }
      reap();
    }
    if (fds[0].revents) read_request();
  }
}
