#include "commands/broker.h"

#include <openssl/evp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <list>

#include <nlohmann/json.hpp>

#include "commands/paths.h"
#include "commands/protocol.h"
#include "util/json_limits.h"
#include "util/sigpipe.h"

namespace hearth::commands {

namespace {

namespace fs = std::filesystem;

constexpr size_t kTailBytes = 4096;
constexpr int kRefused = 126;
// What a connection may hold of the shim's input while its call is being
// recorded (beyond it, reading pauses until the program runs).
constexpr size_t kHeldWhileRecording = 2 * size_t{kMaxPayload};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Conn;

class BrokerImpl final : public Broker {
 public:
  BrokerImpl(uv_loop_t* loop, BrokerOptions o) : loop_(loop), opts_(std::move(o)) {}

  Status listen() {
    workspace_ = fs::weakly_canonical(opts_.workspace).lexically_normal();
    uv_pipe_init(loop_, &server_, 0);
    server_.data = this;
    if (int rc = uv_pipe_bind(&server_, opts_.socket_path.c_str()))
      return Error{"cannot create the command socket " + opts_.socket_path + ": " + uv_strerror(rc)};
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 16, on_connection))
      return Error{"cannot listen on " + opts_.socket_path + ": " + uv_strerror(rc)};
    return {};
  }

  void close(std::function<void()> closed) override;
  size_t active() const override { return conns_.size(); }

  void conn_done(Conn* c);
  uint64_t next_sequence() { return ++sequence_; }
  const BrokerOptions& opts() const { return opts_; }
  const fs::path& workspace() const { return workspace_; }
  uv_loop_t* loop() const { return loop_; }

 private:
  static void on_connection(uv_stream_t* s, int status) noexcept;
  void maybe_free();

  uv_loop_t* loop_;
  BrokerOptions opts_;
  fs::path workspace_;
  uv_pipe_t server_{};
  std::list<Conn*> conns_;
  uint64_t sequence_ = 0;
  bool closing_ = false, server_closed_ = false;
  std::function<void()> closed_cb_;
};

// One shim connection and, once allowed, the program it runs. Owns every
// handle it opens and deletes itself after the last one has closed.
class Conn {
 public:
  Conn(BrokerImpl& b) : b_(b) {}
  ~Conn() {
    *self_ = nullptr;
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  void accept(uv_stream_t* server) {
    uv_pipe_init(b_.loop(), &client_, 0);
    client_.data = this;
    ++handles_;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&client_)) != 0) return finish_now();
    uv_read_start(reinterpret_cast<uv_stream_t*>(&client_), alloc, on_client_read);
  }

  // The broker is closing: kill the program and drop the connection.
  void abort() {
    inv_.shim_gone = true;
    kill_program();
    finish_now();
  }

 private:
  static void alloc(uv_handle_t*, size_t, uv_buf_t* b) noexcept {
    b->base = new char[65536];
    b->len = 65536;
  }

  static void on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Conn*>(s->data);
    std::unique_ptr<char[]> owned(buf->base);
    if (n < 0) {  // the shim is gone (or broke the connection)
      uv_read_stop(s);
      c->client_open_ = false;
      // Gone while its call was being recorded: the program never starts.
      c->inv_.shim_gone = c->running_ || c->waiting_;
      c->kill_program();
      if (!c->running_ || c->host_) c->finish_now();  // a handler's late reply is dropped
      return;
    }
    if (!c->reader_.push(std::string_view(buf->base, static_cast<size_t>(n))).ok()) return c->protocol_error();
    if (c->waiting_) {
      // The input waits for the program, within a bound; reading goes on
      // below it so that a shim that goes meanwhile is noticed.
      if (c->reader_.held() > kHeldWhileRecording) uv_read_stop(s);
      return;
    }
    c->drain_frames();
  }

  // Handles the frames received, in order, until the connection ends or
  // waits for its call's record.
  void drain_frames() {
    while (!finished_ && !waiting_) {
      auto f = reader_.next();
      if (!f) break;
      on_frame(*f);
    }
  }

  void on_frame(const Frame& f) {
    if (!got_request_) {
      if (f.type != FrameType::request) return protocol_error();
      got_request_ = true;
      return on_request(f.payload);
    }
    switch (f.type) {
      case FrameType::stdin_data:
        if (stdin_open_ && host_) take_host_input(f.payload);
        else if (stdin_open_) write_stdin(f.payload);
        break;
      case FrameType::stdin_eof:
        if (host_) call_host();
        else end_stdin();
        break;
      default:
        protocol_error();
    }
  }

  void on_request(const std::string& payload) {
    auto parsed = parse_untrusted_json(payload);
    if (!parsed) return protocol_error();
    auto& req = *parsed;
    if (!req.is_object() || !req.contains("argv") || !req["argv"].is_array() || req["argv"].empty())
      return protocol_error();
    std::vector<std::string> argv;
    for (auto& a : req["argv"]) {
      if (!a.is_string()) return protocol_error();
      argv.push_back(a.get<std::string>());
    }
    std::string cwd = req.value("cwd", std::string("."));
    if (!req.value("cwd", nlohmann::json("")).is_string()) return protocol_error();
    std::string name = fs::path(argv[0]).filename().string();
    const SecretSet* secrets = b_.opts().secrets.get();
    auto redact = [&](const std::string& s) { return secrets ? secrets->redact(s) : s; };
    inv_.sequence = b_.next_sequence();
    inv_.command = name;
    for (auto& a : argv) inv_.argv.push_back(redact(a));
    inv_.argv[0] = name;
    inv_.cwd = redact(cwd);
    inv_.started_at_ms = now_ms();

    const GrantedCommand* cmd = nullptr;
    for (auto& c : b_.opts().commands)
      if (c.name == name) cmd = &c;
    if (!cmd) {
      std::string granted;
      for (auto& c : b_.opts().commands) granted += (granted.empty() ? "" : ", ") + c.name;
      return refuse("hearth: command '" + name + "' is not granted to this step" +
                    (granted.empty() ? std::string(" (it has none)") : " (granted: " + granted + ")") +
                    ". Grant it with commands = [\"" + name + "\"] on the step and a [commands." + name + "] table.");
    }
    std::vector<std::string> args(argv.begin() + 1, argv.end());
    DecisionContext context = b_.opts().context;
    if (cmd->git) {
      // git's global options (-c, -C, --git-dir, --exec-path) choose its config and code.
      if (!args.empty() && !args[0].empty() && args[0][0] == '-')
        return refuse("hearth: '" + name + " " + quote_args({args[0]}) + " ...': options before git's subcommand are "
                      "not allowed for a granted git");
      // Read (and validated by a git process) only when a pattern needs it.
      auto uses_branch = [](const std::vector<ArgPattern>& ps) {
        return std::any_of(ps.begin(), ps.end(), [](const ArgPattern& p) { return p.source.find("{branch}") != std::string::npos; });
      };
      if (uses_branch(cmd->policy.allow) || uses_branch(cmd->policy.deny)) {
        auto branch = workspace_branch(b_.workspace().string(), cmd->exec, cmd->push.git_dir);
        context.branch = branch ? *branch : "";  // invalid or detached: {branch} matches nothing
      }
    }
    Decision d = decide(cmd->policy, args, context);
    inv_.rule = d.rule;
    if (!d.allowed) return refuse(d.message);
    for (auto& a : args) {
      if (a == "--") break;
      for (auto& prefix : cmd->refused_options)
        if (a.rfind(prefix, 0) == 0)
          return refuse("hearth: '" + name + " " + quote_args(args) + "': the option '" + a +
                        "' would undo a setting the broker fixes for " + name);
    }

    // cwd and path arguments stay inside the workspace, judged physically (paths.h).
    auto dir = resolve_call_dir(cwd, b_.workspace());
    if (!dir) return refuse("hearth: " + dir.message());
    std::string run_dir = dir->string();
    if (auto s = check_path_args(args, b_.workspace(), *dir); !s.ok()) return refuse("hearth: " + s.message());
    if (auto config = find_config_file(cmd->workspace_config_files, b_.workspace(), *dir))
      return refuse("hearth: '" + name + "' would read /workspace/" + *config +
                    " as its configuration, which the step can change (and could send the command's secrets"
                    " elsewhere with); remove it, or give the settings in [commands." + name + "] env");
    std::optional<PushPlan> push;  // a push runs from the broker's own git directory, never the workspace
    if (cmd->git && !args.empty() && args[0] == "push") {
      auto plan = plan_push(args, b_.workspace().string(), cmd->push, cmd->exec, cmd->env);
      if (!plan) return refuse("hearth: '" + name + " " + quote_args(args) + "': " + plan.message());
      push = std::move(*plan);
    }
    inv_.allowed = true;
    if (b_.opts().on_started)
      if (auto s = b_.opts().on_started(inv_); !s.ok()) return refuse("hearth: the call cannot be recorded: " + s.message(), false);
    auto start = [this, cmd, args, run_dir, push]() mutable {
      if (cmd->host) return start_host(*cmd, args, run_dir);
      if (push) return start_program(*cmd, std::move(push->argv), push->env, push->cwd);
      std::vector<std::string> program_argv{cmd->name};
      program_argv.insert(program_argv.end(), cmd->leading_args.begin(), cmd->leading_args.end());
      program_argv.insert(program_argv.end(), args.begin(), args.end());
      start_program(*cmd, std::move(program_argv), cmd->env, run_dir);
    };
    if (!b_.opts().when_recorded) return start();
    // The intent first, on disk: the shim's input waits until the program runs.
    waiting_ = true;
    b_.opts().when_recorded([self = std::weak_ptr<Conn*>(self_), start](const Status& recorded) mutable {
      auto p = self.lock();
      if (!p || !*p) return;  // the connection is gone
      Conn* c = *p;
      c->waiting_ = false;
      if (c->finished_) return;
      if (!recorded.ok()) return c->refuse("hearth: the call cannot be recorded: " + recorded.message(), false);
      start();
      c->resume_reading();
    });
  }

  // After the wait for the record: the frames that arrived meanwhile, then
  // the socket again (if reading stopped at the bound).
  void resume_reading() {
    drain_frames();
    if (!finished_ && client_open_)
      uv_read_start(reinterpret_cast<uv_stream_t*>(&client_), alloc, on_client_read);
  }

  // ---- a command the host implements: stdin is gathered, then the handler
  // is called; its reply is sent back as the program's output would be.

  void start_host(const GrantedCommand& cmd, const std::vector<std::string>& args, const std::string& dir) {
    host_ = &cmd;
    host_call_.argv = {cmd.name};
    host_call_.argv.insert(host_call_.argv.end(), args.begin(), args.end());
    host_call_.cwd = dir;
    running_ = true;
    stdin_open_ = true;
    start_timer(cmd.timeout);
  }

  void take_host_input(const std::string& data) {
    if (host_call_.input.size() + data.size() <= kHostInputMax) {
      host_call_.input += data;
      return;
    }
    stdin_open_ = false;
    end_host(1, "", "hearth: '" + host_->name + "' takes at most " + std::to_string(kHostInputMax) +
                        " bytes of input; the call sent more\n");
  }

  void call_host() {
    if (!stdin_open_ || exited_) return;
    stdin_open_ = false;
    std::weak_ptr<Conn*> token = self_;
    host_->host(host_call_, [token](HostReply r) {
      auto t = token.lock();
      if (t && *t) (*t)->end_host(r.exit_code, std::move(r.out), std::move(r.err));
    });
  }

  void end_host(int code, std::string out, std::string err) {
    if (exited_ || finished_) return;
    exited_ = true;
    inv_.exit_code = code;
    if (timer_open_) uv_timer_stop(&timer_);
    const SecretSet* secrets = b_.opts().secrets.get();
    send(FrameType::stdout_data, secrets ? secrets->redact(out) : out);
    send(FrameType::stderr_data, secrets ? secrets->redact(err) : err);
    maybe_done();
  }

  void start_timer(std::chrono::milliseconds timeout) {
    uv_timer_init(b_.loop(), &timer_);
    timer_.data = this;
    ++handles_;
    timer_open_ = true;
    uv_timer_start(&timer_, on_timeout, static_cast<uint64_t>(timeout.count()), 0);
  }

  // Runs cmd.exec with `argv_s` (argv[0] included) and exactly `environ`, in
  // `dir`, in the attempt's jail (sandbox/jail.h), its stdio three pipes.
  void start_program(const GrantedCommand& cmd, std::vector<std::string> argv_s, const std::vector<std::string>& environ,
                     const std::string& dir) {
    std::vector<char*> argv, env;
    for (auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : environ) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    auto close_all = [&pipes] {
      for (auto& p : pipes)
        for (int fd : p)
          if (fd >= 0) ::close(fd);
    };
    for (auto& p : pipes)
      if (::pipe2(p, O_CLOEXEC) != 0) {
        close_all();
        return refuse(std::string("hearth: cannot start ") + cmd.exec + ": pipe: " + std::strerror(errno), false);
      }
    sandbox::ProgramStart start;
    start.program = cmd.exec.c_str();
    start.argv = argv.data();
    start.env = env.data();
    start.cwd = dir.c_str();
    start.stdio[0] = pipes[0][0];
    start.stdio[1] = pipes[1][1];
    start.stdio[2] = pipes[2][1];
    const auto& jail = b_.opts().jail ? b_.opts().jail : sandbox::Jail::host();
    auto started = jail->start(start);
    ::close(pipes[0][0]);
    ::close(pipes[1][1]);
    ::close(pipes[2][1]);
    if (!started) {
      for (int fd : {pipes[0][1], pipes[1][0], pipes[2][0]}) ::close(fd);
      return refuse("hearth: " + started.message(), false);
    }
    pid_ = started->pid;
    pidfd_ = started->pidfd;
    uv_pipe_init(b_.loop(), &in_, 0);
    uv_pipe_init(b_.loop(), &out_, 0);
    uv_pipe_init(b_.loop(), &err_, 0);
    uv_poll_init(b_.loop(), &exit_poll_, pidfd_);
    in_.data = out_.data = err_.data = exit_poll_.data = this;
    handles_ += 4;
    uv_pipe_open(&in_, pipes[0][1]);
    uv_pipe_open(&out_, pipes[1][0]);
    uv_pipe_open(&err_, pipes[2][0]);
    uv_poll_start(&exit_poll_, UV_READABLE, on_exit);
    running_ = true;
    stdin_open_ = true;
    out_open_ = err_open_ = true;
    redactor_ = std::make_unique<StreamPairRedactor>(secrets_or_empty());
    uv_read_start(reinterpret_cast<uv_stream_t*>(&out_), alloc, on_output);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&err_), alloc, on_output);
    start_timer(cmd.timeout);
    // Requests may have carried stdin already, before the spawn: nothing to replay
    // (frames are handled in order, the request first).
  }

  std::shared_ptr<const SecretSet> secrets_or_empty() {
    return b_.opts().secrets ? b_.opts().secrets : std::make_shared<const SecretSet>();
  }

  static void on_output(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Conn*>(s->data);
    std::unique_ptr<char[]> owned(buf->base);
    bool is_out = s == reinterpret_cast<uv_stream_t*>(&c->out_);
    if (n < 0) {
      uv_read_stop(s);
      auto ready = c->redactor_->end(is_out ? 0 : 1);
      c->send(FrameType::stdout_data, ready[0]);
      c->send(FrameType::stderr_data, ready[1]);
      (is_out ? c->out_open_ : c->err_open_) = false;
      c->maybe_done();
      return;
    }
    // One redactor for both: a secret split between stdout and stderr is
    // still hidden, and each stream still goes back on its own.
    auto ready = c->redactor_->push(is_out ? 0 : 1, std::string_view(buf->base, static_cast<size_t>(n)));
    c->send(FrameType::stdout_data, ready[0]);
    c->send(FrameType::stderr_data, ready[1]);
  }

  // The program's pidfd is readable: it has exited. Its process group is
  // killed before it is reaped (its leftovers die with it, and its pid
  // cannot be reused in between).
  static void on_exit(uv_poll_t* h, int, int) noexcept {
    auto* c = static_cast<Conn*>(h->data);
    ::kill(-c->pid_, SIGKILL);
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(c->pidfd_), &info, WEXITED | WNOHANG) != 0 ||
        info.si_pid == 0)
      return;  // not yet (a spurious wake-up)
    c->reaped_ = true;
    uv_poll_stop(h);
    if (c->finished_) return c->close_handle(h);  // the call ended already; only the reaping was left
    c->exited_ = true;
    c->inv_.exit_code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    if (c->timer_open_) uv_timer_stop(&c->timer_);
    c->maybe_done();
  }

  static void on_timeout(uv_timer_t* t) noexcept {
    auto* c = static_cast<Conn*>(t->data);
    if (c->exited_) return;
    if (c->host_) {
      c->inv_.timed_out = true;
      return c->end_host(124, "", "hearth: '" + c->host_->name + "' timed out after " +
                                      std::to_string(c->host_->timeout.count()) + " ms without a reply from its handler\n");
    }
    if (!c->inv_.timed_out) {
      c->inv_.timed_out = true;
      ::kill(-c->pid_, SIGTERM);
      uv_timer_start(t, on_timeout, static_cast<uint64_t>(c->b_.opts().kill_grace.count()), 0);
    } else {
      ::kill(-c->pid_, SIGKILL);
    }
  }

  void kill_program() {
    if (running_ && !exited_ && !host_) ::kill(-pid_, SIGKILL);
  }

  void write_stdin(const std::string& data) {
    if (data.empty()) return;
    auto* req = new uv_write_t;
    auto* copy = new std::string(data);
    req->data = copy;
    uv_buf_t b = uv_buf_init(copy->data(), static_cast<unsigned>(copy->size()));
    if (uv_write(req, reinterpret_cast<uv_stream_t*>(&in_), &b, 1, [](uv_write_t* r, int) noexcept {
          delete static_cast<std::string*>(r->data);
          delete r;
        }) != 0) {
      delete copy;
      delete req;
    }
  }

  void close_stdin() {
    if (!stdin_open_) return;
    stdin_open_ = false;
    close_handle(&in_);
  }

  // The shim's stdin ended: let the writes still queued reach the program
  // (uv_close would drop them), then close its stdin.
  void end_stdin() {
    if (!stdin_open_) return;
    stdin_open_ = false;
    auto* req = new uv_shutdown_t;
    req->data = this;
    int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&in_), [](uv_shutdown_t* r, int) noexcept {
      auto* c = static_cast<Conn*>(r->data);
      delete r;
      c->close_handle(&c->in_);
    });
    if (rc != 0) {
      delete req;
      close_handle(&in_);
    }
  }

  // Sends one or more frames to the shim (big chunks split at the frame limit).
  void send(FrameType t, const std::string& data) {
    if (t == FrameType::stdout_data || t == FrameType::stderr_data) {
      if (data.empty()) return;
      record_output(data);
    }
    for (size_t i = 0; i == 0 || i < data.size(); i += kMaxPayload) {
      std::string_view part = std::string_view(data).substr(i, kMaxPayload);
      if (client_open_) {
        auto* req = new uv_write_t;
        auto* frame = new std::string(encode_frame(t, part));
        req->data = frame;
        uv_buf_t b = uv_buf_init(frame->data(), static_cast<unsigned>(frame->size()));
        ++pending_writes_;
        int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(&client_), &b, 1, [](uv_write_t* r, int) noexcept {
          auto* c = static_cast<Conn*>(r->handle->data);
          delete static_cast<std::string*>(r->data);
          delete r;
          --c->pending_writes_;
          c->maybe_close_client();
        });
        if (rc != 0) {
          --pending_writes_;
          delete frame;
          delete req;
        }
      }
      if (data.empty()) break;
    }
  }

  void record_output(const std::string& data) {
    inv_.output_bytes += static_cast<int64_t>(data.size());
    if (!digest_) {
      digest_.reset(EVP_MD_CTX_new());
      EVP_DigestInit_ex(digest_.get(), EVP_sha256(), nullptr);
    }
    EVP_DigestUpdate(digest_.get(), data.data(), data.size());
    tail_ += data;
    if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }

  void refuse(const std::string& message, bool journal = true) {
    inv_.allowed = false;
    inv_.exit_code = kRefused;
    std::string text = message + "\n";
    if (b_.opts().secrets) text = b_.opts().secrets->redact(text);
    send(FrameType::stderr_data, text);
    if (journal && b_.opts().on_started) (void)b_.opts().on_started(inv_);
    send_exit();
  }

  void maybe_done() {
    if (!running_ || !exited_ || out_open_ || err_open_ || finished_) return;
    send_exit();
  }

  void send_exit() {
    if (finished_) return;
    finished_ = true;
    if (digest_) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned len = 0;
      EVP_DigestFinal_ex(digest_.get(), md, &len);
      static const char* hex = "0123456789abcdef";
      for (unsigned i = 0; i < len; ++i) {
        inv_.output_sha256 += hex[md[i] >> 4];
        inv_.output_sha256 += hex[md[i] & 15];
      }
    }
    inv_.output_tail = tail_;
    send(FrameType::exit, nlohmann::json{{"code", inv_.exit_code}}.dump());
    if (b_.opts().on_finished) b_.opts().on_finished(inv_);
    if (running_) close_process_handles();
    maybe_close_client();
  }

  void protocol_error() {
    kill_program();
    finish_now();
  }

  // Ends the connection without an exit frame (protocol error, shim gone, broker closing).
  void finish_now() {
    if (!finished_) {
      finished_ = true;
      if (got_request_ && b_.opts().on_finished) b_.opts().on_finished(inv_);
    }
    client_open_ = false;
    if (running_) {
      close_process_handles();
      running_ = false;
    }
    close_handle(&client_);
  }

  void close_process_handles() {
    if (timer_open_) close_handle(&timer_);
    if (host_) return;  // a host call has no process
    close_stdin();
    // A program still running was sent SIGKILL: its exit is awaited (and
    // reaped) before the handle closes, so no zombie is left behind.
    if (reaped_) close_handle(&exit_poll_);
    close_handle(&out_);
    close_handle(&err_);
  }

  void maybe_close_client() {
    if (finished_ && pending_writes_ == 0) close_handle(&client_);
  }

  template <class H>
  void close_handle(H* h) {
    auto* handle = reinterpret_cast<uv_handle_t*>(h);
    if (uv_is_closing(handle)) return;
    if (handle == reinterpret_cast<uv_handle_t*>(&timer_)) timer_open_ = false;
    uv_close(handle, [](uv_handle_t* hh) noexcept {
      auto* c = static_cast<Conn*>(hh->data);
      if (--c->handles_ == 0) c->b_.conn_done(c);
    });
  }

  BrokerImpl& b_;
  uv_pipe_t client_{}, in_{}, out_{}, err_{};
  uv_poll_t exit_poll_{};  // on the program's pidfd
  int pidfd_ = -1;
  pid_t pid_ = 0;
  bool reaped_ = false;
  uv_timer_t timer_{};
  int handles_ = 0;
  int pending_writes_ = 0;
  FrameReader reader_;
  Invocation inv_;
  bool got_request_ = false, running_ = false, exited_ = false, finished_ = false;
  bool waiting_ = false;  // for when_recorded: the program has not started, input waits
  bool client_open_ = true, stdin_open_ = false, out_open_ = false, err_open_ = false, timer_open_ = false;
  std::unique_ptr<StreamPairRedactor> redactor_;  // stdout and stderr of the program
  struct DigestFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, DigestFree> digest_;
  std::string tail_;
  const GrantedCommand* host_ = nullptr;  // set: the call goes to this command's handler
  HostCall host_call_;
  std::shared_ptr<Conn*> self_ = std::make_shared<Conn*>(this);  // a handler's reply finds us through it
};

void BrokerImpl::on_connection(uv_stream_t* s, int status) noexcept {
  auto* b = static_cast<BrokerImpl*>(s->data);
  if (status < 0 || b->closing_) return;
  auto* c = new Conn(*b);
  b->conns_.push_back(c);
  c->accept(s);
}

void BrokerImpl::conn_done(Conn* c) {
  conns_.remove(c);
  delete c;
  maybe_free();
}

void BrokerImpl::close(std::function<void()> closed) {
  closing_ = true;
  closed_cb_ = std::move(closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&server_), [](uv_handle_t* h) noexcept {
    auto* b = static_cast<BrokerImpl*>(h->data);
    b->server_closed_ = true;
    ::unlink(b->opts_.socket_path.c_str());
    b->maybe_free();
  });
  for (auto* c : std::list<Conn*>(conns_)) c->abort();
}

void BrokerImpl::maybe_free() {
  if (!closing_ || !server_closed_ || !conns_.empty()) return;
  auto cb = std::move(closed_cb_);
  delete this;
  if (cb) cb();
}

}  // namespace

Result<Broker*> Broker::start(uv_loop_t* loop, BrokerOptions options) {
  // Writing to a program that has closed its stdin must be an error, not
  // a signal that ends the engine.
  util::ignore_sigpipe_if_default();
  auto* b = new BrokerImpl(loop, std::move(options));
  if (auto s = b->listen(); !s.ok()) {
    b->close(nullptr);
    return s.error();
  }
  return static_cast<Broker*>(b);
}

}  // namespace hearth::commands
