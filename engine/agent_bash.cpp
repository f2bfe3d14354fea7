#include "engine/agent_bash.h"

#include <sys/stat.h>

#include "agent/bash_support.h"
#include "util/safe_open.h"

namespace hearth::engine {

namespace {

// `pwd -P` and a newline: a path is at most PATH_MAX.
constexpr size_t kMaxCwdFileBytes = 8192;

// `path` lies at or under `dir` ("/a/b" is under "/a", "/ab" is not).
bool under(const std::string& path, const std::string& dir) {
  return path.compare(0, dir.size(), dir) == 0 && (path.size() == dir.size() || path[dir.size()] == '/');
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

struct SandboxBashSession::Call {
  SandboxBashSession* session = nullptr;  // null once the session is gone
  std::function<void(agent::ToolResult)> done;
  sandbox::Process* process = nullptr;
  agent::BashOutput output;
  agent::BashEnd end;
  std::string note;

  void finish(const sandbox::ExitInfo& info) {
    process = nullptr;
    if (!info.failure.empty()) {
      note += std::string(note.empty() ? "" : "\n") + "[the sandbox failed under the command: " + info.failure +
              "; the next command starts in a fresh sandbox]";
    }
    if (info.timed_out) end.timed_out = true;
    else if (info.killed) end.cancelled = true;
    else if (info.term_signal) end.signal = info.term_signal;
    else end.exit_code = static_cast<int>(info.exit_status);
    std::function<std::string(std::string)> redact;
    if (session) {
      auto& o = session->options_;
      redact = o.redact;
      if (!end.timed_out && !end.cancelled && info.failure.empty()) {
        std::string reported;
        auto text = read_regular_beneath(o.cwd_dir_fd, o.cwd_file_name, kMaxCwdFileBytes);
        if (!text) {
          note += std::string(note.empty() ? "" : "\n") + "[the working directory was not kept: " + o.cwd_file_inside +
                  " is refused: " + text.message() + "]";
        } else if (*text) {
          reported = text->value().substr(0, text->value().find('\n'));
        }
        // Only a directory inside the workspace persists.
        if (under(reported, o.host_root)) reported = o.mount + reported.substr(o.host_root.size());
        if (!reported.empty() && under(reported, o.mount)) session->cwd_ = reported;
        else if (!reported.empty()) {
          session->cwd_ = o.mount;
          note = "[the command ended in " + reported + ", outside the workspace; the next command starts in " + o.mount + "]";
        }
      }
      (void)remove_beneath(o.cwd_dir_fd, o.cwd_file_name);
      session->call_.reset();
    }
    auto cb = std::move(done);
    if (!cb) return;
    agent::ToolResult r = agent::bash_result(output, end, note);
    if (!info.failure.empty()) r.is_error = true;
    if (redact) r.text = redact(std::move(r.text));
    cb(std::move(r));
  }
};

SandboxBashSession::SandboxBashSession(uv_loop_t* loop, SandboxBashOptions options)
    : loop_(loop), options_(std::move(options)), cwd_(options_.mount) {}

SandboxBashSession::~SandboxBashSession() {
  if (!call_) return;  // box_ closes the session (and kills what it holds)
  auto c = std::move(call_);
  c->session = nullptr;
  if (c->process) c->process->kill();
  if (auto cb = std::move(c->done)) cb({"bash: cancelled: the step ended while the command ran", true});
}

void SandboxBashSession::cancel() {
  if (call_ && call_->process) call_->process->kill();
}

void SandboxBashSession::run(const nlohmann::json& args, std::function<void(agent::ToolResult)> done) {
  if (call_) return done({"bash: another command of this session is still running", true});
  auto parsed = agent::parse_bash_args(args);
  if (!parsed) return done({parsed.message(), true});
  auto c = std::make_shared<Call>();
  c->session = this;
  c->done = std::move(done);
  c->end.timeout_ms = parsed->timeout_ms;

  std::string host_dir = options_.host_root + (under(cwd_, options_.mount) ? cwd_.substr(options_.mount.size()) : "");
  struct stat info{};
  if (!under(cwd_, options_.mount) || ::stat(host_dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    c->note = "[the working directory " + cwd_ + " no longer exists; ran in " + options_.mount + "]";
    cwd_ = options_.mount;
    host_dir = options_.host_root;
  }
  (void)remove_beneath(options_.cwd_dir_fd, options_.cwd_file_name);  // a link or directory left there too
  sandbox::ExecSpec spec = options_.base;
  spec.argv = {"bash", "--noprofile", "--norc", "-c",
               "trap 'pwd -P > " + shell_quote(options_.cwd_file_inside) + " 2>/dev/null' EXIT\n" + parsed->command};
  spec.cwd = host_dir;
  spec.timeout = std::chrono::milliseconds(parsed->timeout_ms);
  sandbox::ExecCallbacks cb;
  std::weak_ptr<Call> weak = c;
  cb.on_output = [weak](std::string_view chunk) {
    if (auto call = weak.lock()) call->output.append(chunk);
  };
  cb.on_exit = [c](const sandbox::ExitInfo& info) { c->finish(info); };
  auto box = session(c->note);
  if (!box) {
    auto d = std::move(c->done);
    return d({"bash: cannot start the command's sandbox: " + box.message(), true});
  }
  call_ = c;
  auto p = (*box)->exec(spec, std::move(cb));
  if (!p) {
    call_.reset();
    auto d = std::move(c->done);
    return d({"bash: cannot start the command in the sandbox: " + p.message(), true});
  }
  c->process = *p;
}

Result<sandbox::SandboxSession*> SandboxBashSession::session(std::string& note) {
  if (box_ && box_->problem().empty()) return box_.get();
  bool restarted = box_ != nullptr;
  std::string why = restarted ? box_->problem() : "";
  box_.reset();
  auto opened = options_.sandbox->open_session(loop_, options_.base);
  if (!opened) return opened.error();
  box_ = std::move(*opened);
  if (restarted)
    note += std::string(note.empty() ? "" : "\n") + "[a fresh sandbox: the previous one ended (" + why +
            "); files in /tmp and $HOME and background processes of earlier commands are gone]";
  return box_.get();
}

}  // namespace hearth::engine
