#include "sandbox/watched_process.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hearth::sandbox {

WatchedProcess::WatchedProcess(uv_loop_t* loop, ExecCallbacks cb, const ExecSpec& spec, Target target,
                               std::function<void(int)> signaller)
    : loop_(loop),
      cb_(std::move(cb)),
      target_(target),
      signaller_(std::move(signaller)),
      grace_(spec.kill_grace),
      timeout_(spec.timeout),
      cap_(target == Target::process_group ? UINT64_MAX : spec.isolation.output_cap_bytes),
      loop_clock_(loop),
      clock_(spec.clock ? *spec.clock : loop_clock_) {}

void WatchedProcess::start_output(int out_fd) {
  uv_pipe_init(loop_, &pipe_, 0);
  pipe_.data = this;
  uv_pipe_open(&pipe_, out_fd);
  ++open_handles_;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &WatchedProcess::on_alloc, &WatchedProcess::on_read);
}

// The timers' callbacks may run until close_all() destroys the timers,
// which happens before this object is deleted.
void WatchedProcess::start_timeout() {
  if (!timeout_) return;
  timeout_timer_ = clock_.timer([this] { on_timeout(); });
  timeout_timer_->start(*timeout_);
}

void WatchedProcess::start_grace_timer() {
  if (grace_timer_) return;
  grace_timer_ = clock_.timer([this] { on_grace(); });
  grace_timer_->start(grace_);
}

void WatchedProcess::watch_output(int out_fd, std::chrono::steady_clock::time_point started) {
  started_ = started;
  start_output(out_fd);
  start_timeout();
}

void WatchedProcess::exited(int wait_status, bool killed, std::string failure) {
  if (exited_) return;
  exited_ = true;
  if (killed) killed_ = true;
  int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
  info_.exit_status = sig ? 128 + sig : WEXITSTATUS(wait_status);
  info_.term_signal = sig;
  info_.elapsed = std::chrono::steady_clock::now() - started_;
  info_.failure = std::move(failure);
  signaller_ = nullptr;  // the session may be gone before the output ends
  if (!eof_) start_grace_timer();  // bounds the wait for the output's end
  maybe_finish();
}

Status WatchedProcess::watch(int pid, int out_fd, std::chrono::steady_clock::time_point started) {
  pid_ = pid;
  started_ = started;
  if (auto s = watch_exit(); !s.ok()) {
    ::close(out_fd);
    return s;
  }
  start_output(out_fd);
  start_timeout();
  return {};
}

// Polls a pidfd of pid_ for its exit; when none can be had, kills and reaps
// the child.
Status WatchedProcess::watch_exit() {
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) {
    int err = errno;
    signal(SIGKILL);
    waitpid(pid_, nullptr, __WALL);
    return Error{std::string("cannot watch the started process (pidfd_open needs Linux 5.3 or later): ") +
                 std::strerror(err)};
  }
  uv_poll_init(loop_, &exit_poll_, pidfd_);
  exit_poll_.data = this;
  ++open_handles_;
  uv_poll_start(&exit_poll_, UV_READABLE, &WatchedProcess::on_exit);
  return {};
}

void WatchedProcess::watch_starting(int out_fd, std::chrono::steady_clock::time_point started) {
  started_ = started;
  start_output(out_fd);
  start_timeout();
}

void WatchedProcess::started(int pid) {
  pid_ = pid;
  if (auto s = watch_exit(); !s.ok()) {
    pid_ = 0;
    start_failed(s.message());
    return;
  }
  // Killed (or timed out) while it was being started: no grace for a
  // command that has barely begun.
  if (killed_ || timed_out_) signal(SIGKILL);
}

void WatchedProcess::start_failed(std::string why) {
  exited(127 << 8, false, std::move(why));
}

void WatchedProcess::kill() {
  if (exited_ || killed_) return;
  killed_ = true;
  terminate();
}

void WatchedProcess::signal(int sig) {
  // Not started yet (watch_starting): started() passes a kill on. Never
  // kill(0): that is the engine's own process group.
  if (target_ != Target::remote && pid_ <= 0) return;
  // A namespace sandbox's pid is its init (hearth-init), which passes
  // SIGTERM on to the command's process group.
  if (target_ == Target::remote) {
    if (signaller_) signaller_(sig);
  } else if (target_ == Target::process_group) {
    ::kill(-pid_, sig);
  } else {
    ::kill(pid_, sig);
  }
}

void WatchedProcess::terminate() {
  signal(SIGTERM);
  start_grace_timer();
}

void WatchedProcess::on_timeout() {
  if (exited_) return;
  timed_out_ = true;
  terminate();
}

void WatchedProcess::on_grace() {
  if (!exited_) {
    signal(SIGKILL);
  } else if (!eof_ && target_ == Target::remote) {
    // A remote command's exit came, but a process that left its process
    // group still holds the output open: stop waiting for it.
    static constexpr char kNote[] =
        "\n[hearth: a background process of the command still holds its output open; the rest is not shown]\n";
    if (cb_.on_output) cb_.on_output(std::string_view(kNote, sizeof kNote - 1));
    eof_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe_));
    maybe_finish();  // may destroy this timer: nothing after it
  }
}

void WatchedProcess::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<WatchedProcess*>(h->data);
  buf->base = self->buffer_;
  buf->len = sizeof self->buffer_;
}

void WatchedProcess::deliver(const char* data, size_t n) {
  if (!cb_.on_output) return;
  if (delivered_ >= cap_) return;  // past the cap: read and dropped
  uint64_t room = cap_ - delivered_;
  if (n <= room) {
    delivered_ += n;
    cb_.on_output(std::string_view(data, n));
    return;
  }
  delivered_ = cap_;
  cb_.on_output(std::string_view(data, static_cast<size_t>(room)));
  truncated_ = true;
  std::string marker = "\n[hearth: output truncated after " + std::to_string(cap_) + " bytes; the rest was dropped]\n";
  cb_.on_output(marker);
}

void WatchedProcess::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<WatchedProcess*>(s->data);
  if (n > 0) {
    self->deliver(buf->base, static_cast<size_t>(n));
    return;
  }
  if (n < 0) {  // EOF or error: either way no more output
    self->eof_ = true;
    uv_read_stop(s);
    self->maybe_finish();
  }
}

void WatchedProcess::on_exit(uv_poll_t* h, int, int) noexcept {
  auto* self = static_cast<WatchedProcess*>(h->data);
  int status = 0;
  if (waitpid(self->pid_, &status, WNOHANG | __WALL) != self->pid_) return;  // not yet
  uv_poll_stop(h);
  self->exited_ = true;
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  self->info_.exit_status = sig ? 128 + sig : WEXITSTATUS(status);
  self->info_.term_signal = sig;
  self->info_.elapsed = std::chrono::steady_clock::now() - self->started_;
  // Background children left by the command would hold the pipe open
  // forever: the command's process group ends with it. (A pid namespace
  // ends with its init, by the kernel.)
  if (self->target_ == Target::process_group) ::kill(-self->pid_, SIGKILL);
  self->maybe_finish();
}

void WatchedProcess::maybe_finish() {
  if (!exited_ || !eof_ || reported_) return;
  reported_ = true;
  info_.timed_out = timed_out_;
  info_.killed = killed_;
  if (cb_.on_exit) cb_.on_exit(info_);
  close_all();
}

void WatchedProcess::close_all() {
  if (pidfd_ >= 0) uv_close(reinterpret_cast<uv_handle_t*>(&exit_poll_), &WatchedProcess::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), &WatchedProcess::on_closed);
  timeout_timer_.reset();
  grace_timer_.reset();
}

void WatchedProcess::on_closed(uv_handle_t* h) noexcept {
  auto* self = static_cast<WatchedProcess*>(h->data);
  if (--self->open_handles_ == 0) {
    if (self->pidfd_ >= 0) ::close(self->pidfd_);
    delete self;
  }
}

}  // namespace hearth::sandbox
