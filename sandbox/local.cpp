// The `local` backend: uv_spawn in a new session (so the command and its
// children form one process group we can kill as a whole), one pipe for
// stdout and stderr so their order is kept.
#include <signal.h>

#include <unistd.h>

#include <cstring>

#include "sandbox/sandbox.h"

namespace hearth::sandbox {

namespace {

// Owns the process handle, the output pipe and two timers. Lives on the heap
// and deletes itself once every handle has closed after on_exit has run.
class LocalProcess final : public Process {
 public:
  LocalProcess(uv_loop_t* loop, ExecCallbacks cb, const ExecSpec& spec)
      : loop_(loop), cb_(std::move(cb)), grace_(spec.kill_grace), timeout_(spec.timeout) {}

  Status start(const ExecSpec& spec) {
    started_ = std::chrono::steady_clock::now();
    std::vector<char*> argv, env;
    for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);

    // One pipe for stdout and stderr keeps their interleaving. Both ends are
    // close-on-exec; libuv dup2()s the write end onto the child's 1 and 2.
    uv_file fds[2];
    if (int rc = uv_pipe(fds, 0, 0); rc != 0) return Error{std::string("cannot create output pipe: ") + uv_strerror(rc)};
    uv_pipe_init(loop_, &pipe_, 0);
    pipe_.data = this;
    uv_pipe_open(&pipe_, fds[0]);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];

    uv_process_options_t opts{};
    opts.file = argv[0];
    opts.args = argv.data();
    opts.env = env.data();
    opts.cwd = spec.cwd.c_str();
    opts.exit_cb = &LocalProcess::on_exit;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED;  // setsid(): its own process group
    proc_.data = this;
    int rc = uv_spawn(loop_, &proc_, &opts);
    ::close(fds[1]);  // the child holds its copies; EOF comes when they all close
    if (rc != 0) {
      // A failed uv_spawn still leaves handles to close.
      open_handles_ = 2;
      exited_ = eof_ = true;
      reported_ = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&proc_), &LocalProcess::on_closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), &LocalProcess::on_closed);
      return Error{"cannot start '" + spec.argv[0] + "' in " + spec.cwd + ": " + uv_strerror(rc)};
    }
    pid_ = proc_.pid;
    open_handles_ = 2;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &LocalProcess::on_alloc, &LocalProcess::on_read);
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

  static void on_exit(uv_process_t* p, int64_t status, int sig) noexcept {
    auto* self = static_cast<LocalProcess*>(p->data);
    self->exited_ = true;
    self->info_.exit_status = sig ? 128 + sig : status;
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
    uv_close(reinterpret_cast<uv_handle_t*>(&proc_), &LocalProcess::on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), &LocalProcess::on_closed);
    if (timeout_) uv_close(reinterpret_cast<uv_handle_t*>(&timeout_timer_), &LocalProcess::on_closed);
    if (grace_timer_active_) uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), &LocalProcess::on_closed);
  }

  static void on_closed(uv_handle_t* h) noexcept {
    auto* self = static_cast<LocalProcess*>(h->data);
    if (--self->open_handles_ == 0) delete self;
  }

  uv_loop_t* loop_;
  ExecCallbacks cb_;
  std::chrono::milliseconds grace_;
  std::optional<std::chrono::milliseconds> timeout_;
  uv_process_t proc_{};
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
