#include "agent/local_bash.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "agent/bash_support.h"

namespace hearth::agent {

namespace {

constexpr size_t kCwdMaxBytes = PATH_MAX;

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

bool is_directory(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// `path` lies at or under `dir` ("/a/b" is under "/a", "/ab" is not).
bool under(const std::string& path, const std::string& dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path.compare(0, dir.size(), dir) == 0 && (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace

/// One running command. Owns its four handles; deletes itself when the last
/// has closed. `session` is null once the session was destroyed.
struct LocalBashSession::Call {
  LocalBashSession* session = nullptr;
  std::function<void(ToolResult)> done;
  uv_process_t proc{};
  uv_pipe_t out{};       // stdout and stderr, merged
  uv_pipe_t cwd_pipe{};  // fd 3: the EXIT trap's `pwd -P`
  uv_timer_t timer{};    // the timeout, then the drain after exit
  int open = 0;
  int pid = 0;
  BashOutput output;
  std::string reported_cwd;
  std::string note;
  BashEnd end;
  bool exited = false, out_eof = false, cwd_eof = false, finished = false;
  char buffer[64 * 1024];

  void kill_group() const {
    if (pid > 0) ::kill(-pid, SIGKILL);
  }

  void maybe_finish() {
    if (exited && out_eof && cwd_eof) finish();
  }

  void finish() {
    if (finished) return;
    finished = true;
    kill_group();  // whatever the command left behind in its group
    if (session) {
      std::string reported = reported_cwd;
      while (!reported.empty() && (reported.back() == '\n' || reported.back() == '\r')) reported.pop_back();
      if (!reported.empty() && !end.cancelled && !end.timed_out) session->cwd_ = session->inside_path(reported);
      session->call_ = nullptr;
    }
    close_all();
    if (auto cb = std::move(done)) cb(bash_result(output, end, note));
  }

  void close_all() {
    auto closed = [](uv_handle_t* h) noexcept {
      auto* c = static_cast<Call*>(h->data);
      if (--c->open == 0) delete c;
    };
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&proc), reinterpret_cast<uv_handle_t*>(&out),
                    reinterpret_cast<uv_handle_t*>(&cwd_pipe), reinterpret_cast<uv_handle_t*>(&timer)}) {
      if (h->data && !uv_is_closing(h)) uv_close(h, closed);
    }
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* c = static_cast<Call*>(h->data);
    *buf = uv_buf_init(c->buffer, sizeof c->buffer);
  }

  static void on_output(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Call*>(s->data);
    if (n > 0) {
      c->output.append(std::string_view(buf->base, static_cast<size_t>(n)));
    } else if (n < 0) {
      uv_read_stop(s);
      c->out_eof = true;
      c->maybe_finish();
    }
  }

  static void on_cwd(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Call*>(s->data);
    if (n > 0) {
      if (c->reported_cwd.size() < kCwdMaxBytes) c->reported_cwd.append(buf->base, static_cast<size_t>(n));
    } else if (n < 0) {
      uv_read_stop(s);
      c->cwd_eof = true;
      c->maybe_finish();
    }
  }

  static void on_exit(uv_process_t* p, int64_t status, int sig) noexcept {
    auto* c = static_cast<Call*>(p->data);
    c->exited = true;
    c->end.exit_code = static_cast<int>(status);
    c->end.signal = sig;
    c->kill_group();  // a background child holding the pipes open goes too
    if (!(c->out_eof && c->cwd_eof) && !c->finished) {
      uv_timer_stop(&c->timer);
      uint64_t drain = c->session ? c->session->options_.drain_ms : 0;
      uv_timer_start(&c->timer, on_drained, drain, 0);
    }
    c->maybe_finish();
  }

  static void on_timeout(uv_timer_t* t) noexcept {
    auto* c = static_cast<Call*>(t->data);
    c->end.timed_out = true;
    c->kill_group();
  }

  static void on_drained(uv_timer_t* t) noexcept {
    auto* c = static_cast<Call*>(t->data);
    c->output.append("\n[a process the command started in the background still holds its output open; not waited for]");
    c->finish();
  }
};

LocalBashSession::LocalBashSession(uv_loop_t* loop, const std::string& root, LocalBashOptions options)
    : loop_(loop), root_(real_path(root)), options_(std::move(options)), cwd_(options_.mount) {}

LocalBashSession::~LocalBashSession() {
  if (!call_) return;
  Call* c = call_;
  call_ = nullptr;
  c->session = nullptr;
  c->end.cancelled = true;
  c->kill_group();
  if (auto cb = std::move(c->done)) cb({"bash: cancelled: the session was closed while the command ran", true});
}

void LocalBashSession::cancel() {
  if (!call_) return;
  call_->end.cancelled = true;
  call_->kill_group();
}

std::string LocalBashSession::host_path(const std::string& inside) const {
  if (under(inside, options_.mount)) return root_ + inside.substr(options_.mount.size());
  return inside;
}

std::string LocalBashSession::inside_path(const std::string& host) const {
  if (under(host, root_)) return options_.mount + host.substr(root_.size());
  return host;
}

void LocalBashSession::run(const nlohmann::json& args, std::function<void(ToolResult)> done) {
  if (call_) return done({"bash: another command of this session is still running", true});
  auto parsed = parse_bash_args(args);
  if (!parsed) return done({parsed.message(), true});

  auto* c = new Call;
  c->session = this;
  c->done = std::move(done);
  c->end.timeout_ms = parsed->timeout_ms;
  std::string dir = host_path(cwd_);
  if (!is_directory(dir)) {
    c->note = "[the working directory " + cwd_ + " no longer exists; ran in " + options_.mount + "]";
    cwd_ = options_.mount;
    dir = root_;
  }

  uv_file out_fds[2], cwd_fds[2];
  int rc = uv_pipe(out_fds, UV_NONBLOCK_PIPE, 0);
  if (rc == 0) {
    rc = uv_pipe(cwd_fds, UV_NONBLOCK_PIPE, 0);
    if (rc != 0) {
      ::close(out_fds[0]);
      ::close(out_fds[1]);
    }
  }
  if (rc != 0) {
    auto cb = std::move(c->done);
    delete c;
    return cb({std::string("bash: cannot make a pipe: ") + uv_strerror(rc), true});
  }
  std::string script = "trap 'pwd -P >&3 2>/dev/null' EXIT; " + parsed->command;
  char* argv[] = {const_cast<char*>("bash"), const_cast<char*>("-c"), script.data(), nullptr};
  std::vector<char*> envp;
  for (auto& e : options_.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = stdio[2].flags = stdio[3].flags = UV_INHERIT_FD;
  stdio[1].data.fd = stdio[2].data.fd = out_fds[1];
  stdio[3].data.fd = cwd_fds[1];
  uv_process_options_t opts{};
  opts.file = "bash";
  opts.args = argv;
  opts.env = options_.env.empty() ? nullptr : envp.data();
  opts.cwd = dir.c_str();
  opts.flags = UV_PROCESS_DETACHED;  // setsid: the command leads its own process group
  opts.stdio_count = 4;
  opts.stdio = stdio;
  opts.exit_cb = Call::on_exit;

  c->proc.data = c;
  c->open = 1;
  rc = uv_spawn(loop_, &c->proc, &opts);
  ::close(out_fds[1]);
  ::close(cwd_fds[1]);
  if (rc != 0) {
    ::close(out_fds[0]);
    ::close(cwd_fds[0]);
    auto cb = std::move(c->done);
    c->finished = true;
    c->close_all();  // a failed uv_spawn still leaves a handle to close
    return cb({std::string("bash: cannot start bash: ") + uv_strerror(rc), true});
  }
  c->pid = c->proc.pid;
  uv_pipe_init(loop_, &c->out, 0);
  uv_pipe_init(loop_, &c->cwd_pipe, 0);
  uv_timer_init(loop_, &c->timer);
  c->out.data = c->cwd_pipe.data = c->timer.data = c;
  c->open = 4;
  call_ = c;
  if (uv_pipe_open(&c->out, out_fds[0]) != 0) {
    ::close(out_fds[0]);
    c->out_eof = true;
  } else if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->out), Call::on_alloc, Call::on_output) != 0) {
    c->out_eof = true;
  }
  if (uv_pipe_open(&c->cwd_pipe, cwd_fds[0]) != 0) {
    ::close(cwd_fds[0]);
    c->cwd_eof = true;
  } else if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->cwd_pipe), Call::on_alloc, Call::on_cwd) != 0) {
    c->cwd_eof = true;
  }
  uv_timer_start(&c->timer, Call::on_timeout, static_cast<uint64_t>(parsed->timeout_ms), 0);
}

}  // namespace hearth::agent
