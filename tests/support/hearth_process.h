// The real built `hearth` binary as a child process: stdout and stderr on
// pipes, a pidfd to wait on, killed at scope exit. Shared by the suites that
// test the command end to end.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/support/testdata.h"

extern char** environ;

namespace hearth::testing {

/// How `hearth` ended and what it printed.
struct Outcome {
  int exit_code = -1;  // the code it exited with; -N when killed by signal N
  std::string out, err;
};

/// What a test passes to `hearth`: arguments, extra environment, directory.
struct Invocation {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to (or replacing) the test's own environment
  std::filesystem::path cwd;
};

/// How hearth is started beyond its Invocation.
struct Launch {
  /// When not empty, a command line (absolute program path first) that
  /// starts hearth: hearth's own argv is appended to it.
  std::vector<std::string> wrapper;
  /// When set, stdout (stderr) is appended to this file instead of a pipe:
  /// for a hearth whose steps may outlive it holding the descriptor.
  std::filesystem::path out_file, err_file;
  /// The Invocation's env is hearth's whole environment, with the test's
  /// PATH unless it names one.
  bool only_env = false;
  /// hearth leads a process group of its own, killed whole at scope exit
  /// and by kill_and_reap().
  bool own_group = false;
};

/// A running `hearth`, stdout and stderr on pipes (or files, see Launch),
/// stdin /dev/null. The environment is the test's own minus anything that
/// would change what hearth does (HEARTH_STATE, NO_COLOR), plus `inv.env`.
/// Killed at scope exit if still running, so a failing test leaves nothing
/// behind.
class HearthProcess {
 public:
  explicit HearthProcess(const Invocation& inv, const std::vector<std::string>& wrapper = {})
      : HearthProcess(inv, Launch{wrapper, {}, {}, false, false}) {}

  HearthProcess(const Invocation& inv, const Launch& launch) : own_group_(launch.own_group) {
    const auto& wrapper = launch.wrapper;
    std::string bin = hearth::testing::hearth_bin().string();
    std::vector<std::string> argv = wrapper;
    argv.push_back(bin);
    argv.insert(argv.end(), inv.args.begin(), inv.args.end());
    if (!wrapper.empty()) bin = wrapper[0];
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      std::string name = kv.substr(0, kv.find('='));
      bool keep = launch.only_env ? name == "PATH" : name != "HEARTH_STATE" && name != "HEARTH_STORE" && name != "NO_COLOR";
      if (!keep || inv.env.count(name)) continue;
      env.push_back(kv);
    }
    for (auto& [k, v] : inv.env) env.push_back(k + "=" + v);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    redirect(fa, STDOUT_FILENO, launch.out_file, out);
    redirect(fa, STDERR_FILENO, launch.err_file, err);
    std::string cwd = inv.cwd.string();
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    if (own_group_) {
      posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
      posix_spawnattr_setpgroup(&attr, 0);
    }
    int rc = posix_spawn(&pid_, bin.c_str(), &fa, &attr, cstrings(argv).data(), cstrings(env).data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    for (int fd : {out[1], err[1]})
      if (fd >= 0) close(fd);
    out_fd_ = out[0];
    err_fd_ = err[0];
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start " + bin + ": " + std::strerror(rc));
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) {
      int e = errno;
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      reaped_ = true;
      BOOST_FAIL(std::string("pidfd_open: ") + std::strerror(e));
    }
  }

  ~HearthProcess() {
    if (!reaped_) {  // a failing test: no assertions here
      if (own_group_) kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {out_fd_, err_fd_, pidfd_})
      if (fd >= 0) close(fd);
  }

  HearthProcess(const HearthProcess&) = delete;
  HearthProcess& operator=(const HearthProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return outcome_.out; }

  void signal(int sig) { BOOST_REQUIRE(kill(pid_, sig) == 0); }

  /// Reads stdout until `pattern` (with one group) matches in it and
  /// returns the group; empty if `timeout` passes first or hearth closes
  /// stdout without printing it.
  std::optional<std::string> wait_for_stdout(const std::regex& pattern, std::chrono::milliseconds timeout) {
    return wait_for(outcome_.out, out_fd_, pattern, timeout);
  }
  /// The same for stderr, where `hearth run` reports progress and step output.
  std::optional<std::string> wait_for_stderr(const std::regex& pattern, std::chrono::milliseconds timeout) {
    return wait_for(outcome_.err, err_fd_, pattern, timeout);
  }
  const std::string& err() const { return outcome_.err; }

  /// Reads everything hearth prints until it exits. Fails the test (and
  /// kills hearth) if it has not exited within `timeout`.
  Outcome finish(std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_fd_ >= 0 || err_fd_ >= 0 || !exited_) {
      if (!pump(deadline)) {
        kill(pid_, SIGKILL);
        BOOST_FAIL("hearth did not exit within " + std::to_string(timeout.count()) + " ms\nstdout:\n" +
                   outcome_.out + "\nstderr:\n" + outcome_.err);
      }
    }
    int status = reap();
    outcome_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return outcome_;
  }

  /// The wait status once hearth has exited within `timeout` (it is reaped
  /// then); nullopt while it still runs.
  std::optional<int> wait_status(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!exited_)
      if (!pump(deadline)) return std::nullopt;
    return reap();
  }

  /// SIGKILLs hearth (with own_group, its group too: what it forked and has
  /// not left the group yet) and reaps it. Returns the wait status.
  int kill_and_reap() {
    if (own_group_) kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!exited_)
      BOOST_REQUIRE_MESSAGE(pump(deadline), "hearth " << pid_ << " survived SIGKILL for 10 s");
    return reap();
  }

 private:
  // Points `fd` of the child at `file` (appended) or, without one, at a new
  // pipe whose ends go to `ends`.
  static void redirect(posix_spawn_file_actions_t& fa, int fd, const std::filesystem::path& file, int ends[2]) {
    if (!file.empty()) {
      posix_spawn_file_actions_addopen(&fa, fd, file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      return;
    }
    BOOST_REQUIRE(pipe2(ends, O_CLOEXEC) == 0);
    posix_spawn_file_actions_adddup2(&fa, ends[1], fd);
  }

  int reap() {
    int status = 0;
    BOOST_REQUIRE(waitpid(pid_, &status, 0) == pid_);
    reaped_ = true;
    return status;
  }

  static std::vector<char*> cstrings(std::vector<std::string>& v) {
    std::vector<char*> p;
    for (auto& s : v) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  }

  std::optional<std::string> wait_for(const std::string& text, const int& fd, const std::regex& pattern,
                                      std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::smatch m;
    while (!std::regex_search(text, m, pattern)) {
      if (fd < 0 || !pump(deadline)) return std::nullopt;
    }
    return m[1].str();
  }

  // Waits for one of: output on either pipe, a pipe closing, the process
  // exiting. False when the deadline passes first.
  using Clock = std::chrono::steady_clock;
  bool pump(Clock::time_point deadline) {
    pollfd fds[3];
    int n = 0;
    for (int fd : {out_fd_, err_fd_}) if (fd >= 0) fds[n++] = {fd, POLLIN, 0};
    if (!exited_) fds[n++] = {pidfd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    int ready = poll(fds, static_cast<nfds_t>(n), static_cast<int>(left));
    if (ready < 0 && errno == EINTR) return true;
    BOOST_REQUIRE(ready >= 0);
    if (ready == 0) return false;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == pidfd_) {
        exited_ = true;
        continue;
      }
      int& fd = fds[i].fd == out_fd_ ? out_fd_ : err_fd_;
      std::string& into = fds[i].fd == out_fd_ ? outcome_.out : outcome_.err;
      char buf[4096];
      ssize_t got = read(fd, buf, sizeof buf);
      if (got > 0) {
        into.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fd);
        fd = -1;
      }
    }
    return true;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1, pidfd_ = -1;
  bool exited_ = false, reaped_ = false, own_group_ = false;
  Outcome outcome_;
};

}  // namespace hearth::testing
