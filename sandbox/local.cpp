// The `local` backend: posix_spawn in a new session (so the command and its
// children form one process group we can kill as a whole), one pipe for
// stdout and stderr so their order is kept, a pidfd for the exit.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/sandbox.h"

namespace hearth::sandbox {

namespace {

// Owns the exit poll (on a pidfd), the output pipe and two timers. Lives on the heap
// and deletes itself once every handle has closed after on_exit has run.
class LocalProcess final : public Process {
 public:
  LocalProcess(uv_loop_t* loop, ExecCallbacks cb, const ExecSpec& spec)
      : loop_(loop), cb_(std::move(cb)), grace_(spec.kill_grace), timeout_(spec.timeout) {}

  Status start(const ExecSpec& spec) {
    started_ = std::chrono::steady_clock::now();
    std::string program = find_program(spec.argv[0], spec.env);
    if (program.empty()) return Error{"cannot start '" + spec.argv[0] + "': not found on the step's PATH"};
    std::vector<char*> argv, env;
    for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);

    // One pipe for stdout and stderr keeps their interleaving. Both ends are
    // close-on-exec; the child gets the write end as its 1 and 2.
    uv_file fds[2];
    if (int rc = uv_pipe(fds, 0, 0); rc != 0) return Error{std::string("cannot create output pipe: ") + uv_strerror(rc)};
    int rc = spawn(program, spec.cwd, argv.data(), env.data(), fds[1]);
    ::close(fds[1]);  // the child holds its copies; EOF comes when they all close
    if (rc != 0) {
      ::close(fds[0]);
      return Error{"cannot start '" + spec.argv[0] + "' in " + spec.cwd + ": " + std::strerror(rc)};
    }
    // A pidfd turns the child's exit into an event on the loop: no SIGCHLD
    // handler, and no race with libuv's own child reaping.
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) {
      int err = errno;
      ::kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      ::close(fds[0]);
      return Error{std::string("cannot watch the started process (pidfd_open needs Linux 5.3 or later): ") + std::strerror(err)};
    }
    uv_pipe_init(loop_, &pipe_, 0);
    pipe_.data = this;
    uv_pipe_open(&pipe_, fds[0]);
    uv_poll_init(loop_, &exit_poll_, pidfd_);
    exit_poll_.data = this;
    open_handles_ = 2;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &LocalProcess::on_alloc, &LocalProcess::on_read);
    uv_poll_start(&exit_poll_, UV_READABLE, &LocalProcess::on_exit);
    if (timeout_) {
      uv_timer_init(loop_, &timeout_timer_);
      timeout_timer_.data = this;
      ++open_handles_;
      uv_timer_start(&timeout_timer_, &LocalProcess::on_timeout, static_cast<uint64_t>(timeout_->count()), 0);
    }
    return {};
  }

  void kill() override {
    if (exited_ || killed_) return;
    killed_ = true;
    terminate();
  }
  int pid() const override { return pid_; }
  bool has_handles() const { return open_handles_ > 0; }

 private:
  void terminate() {
    ::kill(-pid_, SIGTERM);
    if (grace_timer_active_) return;
    uv_timer_init(loop_, &grace_timer_);
    grace_timer_.data = this;
    ++open_handles_;
    grace_timer_active_ = true;
    uv_timer_start(&grace_timer_, &LocalProcess::on_grace, static_cast<uint64_t>(grace_.count()), 0);
  }

  static void on_timeout(uv_timer_t* t) noexcept {
    auto* self = static_cast<LocalProcess*>(t->data);
    if (self->exited_) return;
    self->timed_out_ = true;
    self->terminate();
  }

  static void on_grace(uv_timer_t* t) noexcept {
    auto* self = static_cast<LocalProcess*>(t->data);
    ::kill(-self->pid_, SIGKILL);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<LocalProcess*>(h->data);
    buf->base = self->buffer_;
    buf->len = sizeof self->buffer_;
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<LocalProcess*>(s->data);
    if (n > 0) {
      if (self->cb_.on_output) self->cb_.on_output(std::string_view(buf->base, static_cast<size_t>(n)));
      return;
    }
    if (n < 0) {  // EOF or error: either way no more output
      self->eof_ = true;
      uv_read_stop(s);
      self->maybe_finish();
    }
  }

  static void on_exit(uv_poll_t* h, int, int) noexcept {
    auto* self = static_cast<LocalProcess*>(h->data);
    int status = 0;
    if (waitpid(self->pid_, &status, WNOHANG) != self->pid_) return;  // not yet
    uv_poll_stop(h);
    self->exited_ = true;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    self->info_.exit_status = sig ? 128 + sig : WEXITSTATUS(status);
    self->info_.term_signal = sig;
    self->info_.elapsed = std::chrono::steady_clock::now() - self->started_;
    // Background children left by the command would hold the pipe open
    // forever: the command's process group ends with it.
    ::kill(-self->pid_, SIGKILL);
    self->maybe_finish();
  }

  void maybe_finish() {
    if (!exited_ || !eof_ || reported_) return;
    reported_ = true;
    info_.timed_out = timed_out_;
    info_.killed = killed_;
    if (cb_.on_exit) cb_.on_exit(info_);
    close_all();
  }

  void close_all() {
    uv_close(reinterpret_cast<uv_handle_t*>(&exit_poll_), &LocalProcess::on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), &LocalProcess::on_closed);
    if (timeout_) uv_close(reinterpret_cast<uv_handle_t*>(&timeout_timer_), &LocalProcess::on_closed);
    if (grace_timer_active_) uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), &LocalProcess::on_closed);
  }

  static void on_closed(uv_handle_t* h) noexcept {
    auto* self = static_cast<LocalProcess*>(h->data);
    if (--self->open_handles_ == 0) {
      ::close(self->pidfd_);
      delete self;
    }
  }

  // posix_spawn (vfork semantics on Linux): unlike fork(), its cost does not
  // grow with the engine's memory. The child gets its own session (so its
  // process group can be killed whole), stdin from /dev/null, default
  // signal dispositions and an empty signal mask. Returns 0 or an errno.
  int spawn(const std::string& program, const std::string& cwd, char* const* argv, char* const* env, int out_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    sigset_t all, none;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, argv, env);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc == 0) pid_ = pid;
    return rc;
  }

  // argv[0] as the child would find it: on the PATH of its environment
  // (not the engine's), like execvp.
  static std::string find_program(const std::string& name, const std::vector<std::string>& env) {
    if (name.find('/') != std::string::npos) return name;
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    for (auto& e : env)
      if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) end = path.size();
      std::string dir = path.substr(start, end - start);
      std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
    return "";
  }

  uv_loop_t* loop_;
  ExecCallbacks cb_;
  std::chrono::milliseconds grace_;
  std::optional<std::chrono::milliseconds> timeout_;
  uv_poll_t exit_poll_{};  // readable when the child exits
  int pidfd_ = -1;
  uv_pipe_t pipe_{};
  uv_timer_t timeout_timer_{};
  uv_timer_t grace_timer_{};
  bool grace_timer_active_ = false;
  int open_handles_ = 0;
  int pid_ = 0;
  bool exited_ = false, eof_ = false, reported_ = false, timed_out_ = false, killed_ = false;
  ExitInfo info_;
  std::chrono::steady_clock::time_point started_;
  char buffer_[64 * 1024];
};

class LocalSandbox final : public Sandbox {
 public:
  Result<Process*> spawn(uv_loop_t* loop, const ExecSpec& spec, ExecCallbacks callbacks) override {
    if (spec.argv.empty()) return Error{"nothing to run: empty command"};
    auto* p = new LocalProcess(loop, std::move(callbacks), spec);
    if (auto s = p->start(spec); !s.ok()) {
      if (!p->has_handles()) delete p;  // else it frees itself once they close
      return Error{s.message()};
    }
    return static_cast<Process*>(p);
  }
  std::string_view kind() const override { return "local"; }
};

}  // namespace

std::unique_ptr<Sandbox> make_local_sandbox() { return std::make_unique<LocalSandbox>(); }

}  // namespace hearth::sandbox
