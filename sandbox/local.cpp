// The `local` backend: posix_spawn in a new session (so the command and its
// children form one process group we can kill as a whole), one pipe for
// stdout and stderr so their order is kept; watched_process.h watches it.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/path_search.h"
#include "sandbox/sandbox.h"
#include "sandbox/session.h"
#include "sandbox/spawn_child.h"
#include "sandbox/watched_process.h"

namespace hearth::sandbox {

namespace {

// argv[0] as the child would find it, like execvp.
std::string find_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  for (auto& c : program_candidates(name, env))
    if (::access(c.c_str(), X_OK) == 0) return c;
  return "";
}

Status start(WatchedProcess* p, const ExecSpec& spec) {
  auto started = std::chrono::steady_clock::now();
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
  pid_t pid = 0;
  int rc = spawn_child(program.c_str(), spec.cwd.c_str(), argv.data(), env.data(), fds[1], &pid);
  ::close(fds[1]);  // the child holds its copies; EOF comes when they all close
  if (rc != 0) {
    ::close(fds[0]);
    return Error{"cannot start '" + spec.argv[0] + "' in " + spec.cwd + ": " + std::strerror(rc)};
  }
  return p->watch(pid, fds[0], started);
}

class LocalSandbox final : public Sandbox {
 public:
  Result<Process*> spawn(uv_loop_t* loop, const ExecSpec& spec, ExecCallbacks callbacks) override {
    if (spec.argv.empty()) return Error{"nothing to run: empty command"};
    // Its ports would be the host's own 127.0.0.1, open to every local user.
    if (!spec.isolation.forwards.empty())
      return Error{"the local backend cannot forward loopback ports (API proxies need kind = \"namespace\")"};
    auto* p = new WatchedProcess(loop, std::move(callbacks), spec, WatchedProcess::Target::process_group);
    if (auto s = start(p, spec); !s.ok()) {
      if (!p->has_handles()) delete p;  // else it frees itself once they close
      return Error{s.message()};
    }
    return static_cast<Process*>(p);
  }
  Result<std::unique_ptr<SandboxSession>> open_session(uv_loop_t* loop, const ExecSpec& base) override {
    if (!base.isolation.forwards.empty())
      return Error{"the local backend cannot forward loopback ports (API proxies need kind = \"namespace\")"};
    return make_spawning_session(loop, *this, base);
  }
  std::string_view kind() const override { return "local"; }
};

}  // namespace

std::unique_ptr<Sandbox> make_local_sandbox() { return std::make_unique<LocalSandbox>(); }

}  // namespace hearth::sandbox
