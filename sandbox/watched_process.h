// Private to sandbox/: a started child watched on the loop. Shared by the
// backends: the exit through a pidfd (no SIGCHLD handler, no race with
// libuv's reaping), output through one pipe (stdout and stderr in order),
// the timeout, the kill grace (both on the spec's clock, util/clock.h) and
// the output cap.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sandbox/sandbox.h"

namespace hearth::sandbox {

class WatchedProcess final : public Process {
 public:
  /// What a kill reaches. `process_group`: the child leads a session whose
  /// group is signalled, and killed whole when the child exits.
  /// `pid_namespace`: the child is the init of its own pid namespace; when
  /// it dies the kernel kills every other process in it.
  /// `remote`: a command of a session, started by the session's helper:
  /// signals go through `signaller` (to the command's process group), and
  /// the session reports the exit with exited().
  enum class Target { process_group, pid_namespace, remote };

  /// `signaller` is used with Target::remote only, and only until exited().
  WatchedProcess(uv_loop_t* loop, ExecCallbacks cb, const ExecSpec& spec, Target target,
                 std::function<void(int sig)> signaller = nullptr);

  /// Takes over a started child: its pid and the read end of its output
  /// pipe (`out_fd`, owned from now on). On error the child is killed and
  /// reaped, and the caller deletes this object only if !has_handles().
  Status watch(int pid, int out_fd, std::chrono::steady_clock::time_point started);

  /// A child still being started (off the loop thread): watches the output
  /// pipe `out_fd` (owned from now on) and the timeout until started() or
  /// start_failed() says how the start went. A kill or timeout meanwhile
  /// kills the child as soon as it exists.
  void watch_starting(int out_fd, std::chrono::steady_clock::time_point started);
  /// The child being started is `pid`: watched from now on. When it cannot
  /// be watched it is killed and reaped, and the command ends as
  /// start_failed() ends it.
  void started(int pid);
  /// The child could not be started: the command ends with status 127 and
  /// `why` as its ExitInfo::failure, once its output has ended.
  void start_failed(std::string why);

  /// Target::remote: watches the output pipe `out_fd` (owned from now on)
  /// and the timeout; the exit comes through exited().
  void watch_output(int out_fd, std::chrono::steady_clock::time_point started);
  /// Target::remote: the command ended with `wait_status`. `killed`: it was
  /// ended by its session's close; `failure`: by the failure of its sandbox
  /// (ExitInfo::failure). Once. When output is still held open by a process
  /// that left the command's process group, it is read for kill_grace more,
  /// then dropped.
  void exited(int wait_status, bool killed, std::string failure);

  void kill() override;
  int pid() const override { return pid_; }
  bool has_handles() const { return open_handles_ > 0; }

 private:
  void terminate();
  void signal(int sig);
  void deliver(const char* data, size_t n);
  void maybe_finish();
  void close_all();
  void start_output(int out_fd);
  Status watch_exit();
  void start_timeout();
  void start_grace_timer();

  void on_timeout();
  void on_grace();
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void on_exit(uv_poll_t* h, int, int) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;

  uv_loop_t* loop_;
  ExecCallbacks cb_;
  Target target_;
  std::function<void(int)> signaller_;
  std::chrono::milliseconds grace_;
  std::optional<std::chrono::milliseconds> timeout_;
  uint64_t cap_;              // output bytes delivered at most
  uint64_t delivered_ = 0;
  bool truncated_ = false;
  uv_poll_t exit_poll_{};     // readable when the child exits
  int pidfd_ = -1;
  uv_pipe_t pipe_{};
  // The timers come from the spec's clock, else from the loop's; they close
  // their own handles, so they are not counted in open_handles_.
  util::LoopClock loop_clock_;
  util::Clock& clock_;
  std::unique_ptr<util::Timer> timeout_timer_;
  std::unique_ptr<util::Timer> grace_timer_;
  int open_handles_ = 0;      // the object deletes itself when the last closes
  int pid_ = 0;
  bool exited_ = false, eof_ = false, reported_ = false, timed_out_ = false, killed_ = false;
  ExitInfo info_;
  std::chrono::steady_clock::time_point started_;
  char buffer_[64 * 1024];
};

}  // namespace hearth::sandbox
