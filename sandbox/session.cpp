// Sessions (sandbox.h's SandboxSession): the namespace backend's, around one
// hearth-stepbox helper per sandbox, and the local backend's, which spawns.
#include "sandbox/session.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "sandbox/passed_fds.h"
#include "sandbox/path_search.h"
#include "sandbox/session_protocol.h"
#include "sandbox/watched_process.h"
#include "util/companion.h"

namespace hearth::sandbox {

namespace proto = session_protocol;

namespace {

// How long a blocked write to the helper may take before the session gives
// up on it (it reads each request at once; only a stopped helper blocks).
constexpr int kSendTimeoutSeconds = 5;

std::string describe_helper_end(int pid, int status) {
  std::string what = "the sandbox session's helper (hearth-stepbox, pid " + std::to_string(pid) + ") ";
  if (WIFSIGNALED(status))
    what += "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
            "; from outside the sandbox, or by the out-of-memory killer)";
  else if (WEXITSTATUS(status) == 3)
    what += "stopped on a request it could not read (a bug in Hearth)";
  else
    what += "exited with status " + std::to_string(WEXITSTATUS(status));
  return what + "; every process of the session ended with it, and its /tmp is gone";
}

class HelperSession;

// The engine's side of one helper. Lives on the heap from open until its
// handles have closed after close(); deletes itself then. Every command it
// started has reported its exit before that.
class HelperCore {
 public:
  HelperCore(uv_loop_t* loop, StartedHelper helper, const ExecSpec& base)
      : loop_(loop), pid_(helper.pid), control_(helper.control_fd), release_(std::move(helper.release)), base_(base) {}

  Status start() {
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) return Error{std::string("cannot watch the session's helper (pidfd_open): ") + std::strerror(errno)};
    uv_poll_init(loop_, &exit_poll_, pidfd_);
    uv_poll_init(loop_, &control_poll_, control_);
    exit_poll_.data = control_poll_.data = this;
    uv_poll_start(&exit_poll_, UV_READABLE, &HelperCore::on_helper_exit);
    uv_poll_start(&control_poll_, UV_READABLE, &HelperCore::on_control);
    return {};
  }

  // Gives up on a helper that could not be watched: kills it, frees all.
  void abandon() {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, __WALL);
    ::close(control_);
    if (release_) release_();
    delete this;
  }

  Result<Process*> exec(const ExecSpec& cmd, ExecCallbacks callbacks);
  void close(std::function<void()> done);
  const std::string& problem() const { return problem_; }

  HelperSession* owner = nullptr;  // cleared by either side when it goes

 private:
  void send_signal(uint64_t id, int sig) {
    if (helper_gone_) return;
    proto::Header h;
    h.type = proto::signal;
    h.id = id;
    h.arg = sig;
    (void)::send(control_, &h, sizeof h, MSG_NOSIGNAL);  // a dead helper: its exit ends the command
  }
  // Sends `wire` (a whole request) with `fd` attached to its first byte,
  // waiting while the helper catches up, for kSendTimeoutSeconds at most
  // (the socket is non-blocking: libuv polls it). Returns the bytes sent;
  // fewer than all with errno set.
  size_t send_request(const std::string& wire, int fd) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kSendTimeoutSeconds);
    size_t sent = 0;
    while (sent < wire.size()) {
      ssize_t n;
      if (sent == 0) {
        n = send_with_fd(control_, wire.data(), wire.size(), fd);
      } else {
        n = ::send(control_, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
      }
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{control_, POLLOUT, 0};
        if (left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0) continue;
        errno = EAGAIN;
      }
      break;
    }
    return sent;
  }
  void fail(std::string why) {
    if (problem_.empty()) problem_ = std::move(why);
    if (!helper_gone_) ::kill(pid_, SIGKILL);  // its exit ends every command
  }
  void read_control();
  void after_exit();
  static void on_control(uv_poll_t* h, int status, int events) noexcept;
  static void on_helper_exit(uv_poll_t* h, int status, int events) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;

  uv_loop_t* loop_;
  int pid_;
  int control_;
  int pidfd_ = -1;
  std::function<void()> release_;
  ExecSpec base_;
  uv_poll_t exit_poll_{};
  uv_poll_t control_poll_{};
  std::map<uint64_t, WatchedProcess*> running_;  // until each reports its exit
  uint64_t next_id_ = 1;
  std::string inbox_;    // bytes from the helper not yet a whole message
  std::string problem_;  // why exec() refuses
  bool helper_gone_ = false, control_eof_ = false, closing_ = false, closed_ = false;
  int open_handles_ = 2;
  std::function<void()> done_;
};

class HelperSession final : public SandboxSession {
 public:
  explicit HelperSession(HelperCore* core) : core_(core) { core_->owner = this; }
  ~HelperSession() override {
    if (!core_) return;
    core_->owner = nullptr;
    core_->close(nullptr);
  }
  Result<Process*> exec(const ExecSpec& cmd, ExecCallbacks callbacks) override {
    if (!core_) return Error{"the sandbox session is closed"};
    return core_->exec(cmd, std::move(callbacks));
  }
  void close(std::function<void()> done) override {
    if (core_) core_->close(std::move(done));
  }
  std::string problem() const override { return core_ ? core_->problem() : "the sandbox session is closed"; }

  HelperCore* core_;  // null once it has freed itself
};

Result<Process*> HelperCore::exec(const ExecSpec& cmd, ExecCallbacks callbacks) {
  if (!problem_.empty()) return Error{problem_};
  if (cmd.argv.empty()) return Error{"nothing to run: empty command"};
  auto started = std::chrono::steady_clock::now();
  auto cwd = inside_cwd(cmd.cwd, base_.isolation.workspace);
  if (!cwd) return cwd.error();
  auto candidates = program_candidates(cmd.argv[0], cmd.env);
  uint32_t counts[3] = {static_cast<uint32_t>(cmd.argv.size()), static_cast<uint32_t>(cmd.env.size()),
                        static_cast<uint32_t>(candidates.size())};
  // The request as sent: the header (filled in below), then the body.
  std::string wire(sizeof(proto::Header), '\0');
  wire.append(reinterpret_cast<const char*>(counts), sizeof counts);
  auto add = [&](const std::string& s) {
    wire += s;
    wire += '\0';
    return s.find('\0') == std::string::npos;
  };
  bool clean = add(*cwd);
  for (auto* list : {&cmd.argv, &cmd.env, &std::as_const(candidates)})
    for (auto& s : *list) clean = add(s) && clean;
  if (!clean) return Error{"cannot start '" + cmd.argv[0] + "': an argument or variable holds a NUL byte"};
  size_t body_len = wire.size() - sizeof(proto::Header);
  if (body_len > proto::kMaxBody)
    return Error{"cannot start '" + cmd.argv[0] + "': its arguments and environment take " + std::to_string(body_len) +
                 " bytes, more than the " + std::to_string(proto::kMaxBody) + " a session accepts"};

  uv_file out[2];
  if (int rc = uv_pipe(out, 0, 0); rc != 0) return Error{std::string("cannot create output pipe: ") + uv_strerror(rc)};
  uint64_t id = next_id_++;
  proto::Header h;
  h.type = proto::run;
  h.body_len = static_cast<uint32_t>(body_len);
  h.id = id;
  std::memcpy(wire.data(), &h, sizeof h);
  size_t sent = send_request(wire, out[1]);
  int err = errno;
  ::close(out[1]);
  if (sent < wire.size()) {
    ::close(out[0]);
    // The helper has just died: its exit (on the loop) will say how.
    if (err != EAGAIN && err != EWOULDBLOCK)
      return Error{std::string("the sandbox session's helper is gone (") + std::strerror(err) + ")"};
    // A partial request would desynchronise the stream: the session ends.
    fail("the sandbox session's helper did not take a command within " + std::to_string(kSendTimeoutSeconds) + " s");
    return Error{problem_};
  }
  auto on_exit = std::move(callbacks.on_exit);
  callbacks.on_exit = [this, id, on_exit = std::move(on_exit)](const ExitInfo& e) {
    running_.erase(id);
    if (on_exit) on_exit(e);
    after_exit();
  };
  ExecSpec spec = cmd;
  spec.isolation.output_cap_bytes = base_.isolation.output_cap_bytes;
  auto* p = new WatchedProcess(loop_, std::move(callbacks), spec, WatchedProcess::Target::remote,
                               [this, id](int sig) { send_signal(id, sig); });
  p->watch_output(out[0], started);
  running_[id] = p;
  return static_cast<Process*>(p);
}

void HelperCore::read_control() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(control_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      control_eof_ = true;
      uv_poll_stop(&control_poll_);
      break;
    }
    if (n < 0) break;
    inbox_.append(buf, static_cast<size_t>(n));
  }
  size_t pos = 0;
  while (inbox_.size() - pos >= sizeof(proto::Header)) {
    proto::Header h;
    std::memcpy(&h, inbox_.data() + pos, sizeof h);
    pos += sizeof h;
    if (h.type != proto::exit || h.body_len != 0) {
      fail("the sandbox session's helper sent a message outside the session protocol");
      break;
    }
    auto it = running_.find(h.id);
    if (it != running_.end()) it->second->exited(h.arg, false, "");
  }
  inbox_.erase(0, pos);
}

void HelperCore::on_control(uv_poll_t* h, int, int) noexcept { static_cast<HelperCore*>(h->data)->read_control(); }

void HelperCore::on_helper_exit(uv_poll_t* h, int, int) noexcept {
  auto* self = static_cast<HelperCore*>(h->data);
  int status = 0;
  if (waitpid(self->pid_, &status, WNOHANG | __WALL) != self->pid_) return;  // not yet
  uv_poll_stop(h);
  // Exits it reported before it ended still count.
  if (!self->control_eof_) self->read_control();
  uv_poll_stop(&self->control_poll_);
  self->helper_gone_ = true;
  if (self->problem_.empty()) self->problem_ = describe_helper_end(self->pid_, status);
  // Its death killed every process in the sandbox (it was the pid
  // namespace's init); the commands still running end with it.
  std::vector<uint64_t> ids;
  for (auto& [id, p] : self->running_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = self->running_.find(id);
    if (it != self->running_.end()) it->second->exited(SIGKILL, self->closing_, self->closing_ ? "" : self->problem_);
  }
  self->after_exit();
}

void HelperCore::close(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  done_ = std::move(done);
  problem_ = "the sandbox session is closed";
  if (!helper_gone_) ::kill(pid_, SIGKILL);  // the kernel ends everything else in it
  after_exit();
}

void HelperCore::after_exit() {
  if (!closing_ || !helper_gone_ || !running_.empty() || closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&exit_poll_), &HelperCore::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&control_poll_), &HelperCore::on_closed);
}

void HelperCore::on_closed(uv_handle_t* h) noexcept {
  auto* self = static_cast<HelperCore*>(h->data);
  if (--self->open_handles_ > 0) return;
  ::close(self->pidfd_);
  ::close(self->control_);
  if (self->release_) self->release_();
  if (self->owner) self->owner->core_ = nullptr;
  auto done = std::move(self->done_);
  delete self;
  if (done) done();
}

// The local backend's session: each command is a spawn of the session's
// isolation; close kills those still running.
class SpawningSession final : public SandboxSession {
 public:
  SpawningSession(uv_loop_t* loop, Sandbox& sandbox, const ExecSpec& base)
      : loop_(loop), sandbox_(sandbox), base_(base), state_(std::make_shared<State>()) {}
  ~SpawningSession() override { close(nullptr); }

  Result<Process*> exec(const ExecSpec& cmd, ExecCallbacks callbacks) override {
    if (state_->closing) return Error{"the sandbox session is closed"};
    ExecSpec spec = cmd;
    spec.isolation = base_.isolation;
    uint64_t id = state_->next_id++;
    auto on_exit = std::move(callbacks.on_exit);
    callbacks.on_exit = [state = state_, id, on_exit = std::move(on_exit)](const ExitInfo& e) {
      state->running.erase(id);
      if (on_exit) on_exit(e);
      if (state->closing && state->running.empty() && state->done) std::exchange(state->done, nullptr)();
    };
    auto p = sandbox_.spawn(loop_, spec, std::move(callbacks));
    if (p) state_->running[id] = *p;
    return p;
  }
  /// `done` runs before close returns when nothing is running.
  void close(std::function<void()> done) override {
    if (state_->closing) return;
    state_->closing = true;
    state_->done = std::move(done);
    if (state_->running.empty()) {
      if (state_->done) std::exchange(state_->done, nullptr)();
      return;
    }
    std::vector<Process*> running;
    for (auto& [id, p] : state_->running) running.push_back(p);
    for (auto* p : running) p->kill();
  }
  std::string problem() const override { return state_->closing ? "the sandbox session is closed" : ""; }

 private:
  struct State {
    std::map<uint64_t, Process*> running;
    uint64_t next_id = 1;
    bool closing = false;
    std::function<void()> done;
  };
  uv_loop_t* loop_;
  Sandbox& sandbox_;
  ExecSpec base_;
  std::shared_ptr<State> state_;  // shared with the commands' callbacks
};

}  // namespace

Result<std::unique_ptr<SandboxSession>> make_helper_session(uv_loop_t* loop, StartedHelper helper, const ExecSpec& base) {
  auto* core = new HelperCore(loop, std::move(helper), base);
  if (auto s = core->start(); !s.ok()) {
    core->abandon();
    return s.error();
  }
  return std::unique_ptr<SandboxSession>(std::make_unique<HelperSession>(core));
}

std::unique_ptr<SandboxSession> make_spawning_session(uv_loop_t* loop, Sandbox& sandbox, const ExecSpec& base) {
  return std::make_unique<SpawningSession>(loop, sandbox, base);
}

std::string find_stepbox() {
  return find_companion("HEARTH_STEPBOX", "hearth-stepbox", "sandbox");
}

}  // namespace hearth::sandbox
