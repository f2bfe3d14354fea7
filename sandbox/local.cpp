// The `local` backend: posix_spawn in a new session (so the command and its
// children form one process group we can kill as a whole), one pipe for
// stdout and stderr so their order is kept; watched_process.h watches it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/path_search.h"
#include "sandbox/sandbox.h"
#include "sandbox/watched_process.h"

namespace hearth::sandbox {

namespace {

// posix_spawn (vfork semantics on Linux): unlike fork(), its cost does not
// grow with the engine's memory. The child gets its own session (so its
// process group can be killed whole), stdin from /dev/null, default
// signal dispositions and an empty signal mask. Returns 0 or an errno.
int spawn_child(const std::string& program, const std::string& cwd, char* const* argv, char* const* env, int out_fd,
                pid_t* pid) {
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
  int rc = posix_spawn(pid, program.c_str(), &actions, &attr, argv, env);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc;
}

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
  int rc = spawn_child(program, spec.cwd, argv.data(), env.data(), fds[1], &pid);
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
  std::string_view kind() const override { return "local"; }
};

}  // namespace

std::unique_ptr<Sandbox> make_local_sandbox() { return std::make_unique<LocalSandbox>(); }

}  // namespace hearth::sandbox
