#include "sandbox/spawn_child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/child_setup.h"

namespace hearth::sandbox {

namespace {

// What the child needs, and where it leaves the errno of a failure. The
// child shares this memory (CLONE_VM | CLONE_VFORK, as posix_spawn does)
// until it execs or exits.
struct SpawnPlan {
  const char* const* programs;  // candidates, tried in order in the one child
  size_t n_programs;
  const char* cwd;
  char* const* argv;
  char* const* env;
  int out_fd;
  Spawner spawner;
  int err = 0;  // written by the child when it fails
};

int spawn_child_main(void* arg) noexcept {
  auto* p = static_cast<SpawnPlan*>(arg);
  if (!p->spawner.clean_signals) child_setup::default_signals();
  int in = p->spawner.null_fd >= 0 ? p->spawner.null_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int stdio[3] = {in, p->out_fd, p->out_fd};
  if (in < 0 || child_setup::new_session() != 0 || child_setup::set_stdio(stdio) != 0 || ::chdir(p->cwd) != 0 ||
      child_setup::close_inherited() != 0) {
    p->err = errno;
    _exit(127);
  }
  child_setup::unblock_signals();
  // Like execvp: a candidate missing or not executable is skipped, and the
  // most telling error is kept (EACCES over ENOENT).
  int err = ENOENT;
  for (size_t i = 0; i < p->n_programs; ++i) {
    ::execve(p->programs[i], p->argv, p->env);
    if (errno != ENOENT && errno != ENOTDIR) err = errno;
    if (errno != EACCES && errno != ENOENT && errno != ENOTDIR) break;
  }
  p->err = err;
  _exit(127);
}

// One child for all of `programs`: a PATH of six directories costs one
// clone, not one per directory before the program's.
int spawn(const char* const* programs, size_t n, const char* cwd, char* const* argv, char* const* env, int out_fd,
          pid_t* pid, Spawner spawner) {
  if (n == 0) return ENOENT;
  SpawnPlan plan{programs, n, cwd, argv, env, out_fd, spawner};
  // The child runs on this buffer while this thread waits for its exec; no
  // handler of the caller's may run in it: every signal stays blocked until
  // it execs.
  alignas(16) char stack[32 * 1024];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int child = ::clone(spawn_child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child < 0) return err;
  if (plan.err != 0) {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return plan.err;
  }
  *pid = child;
  return 0;
}

}  // namespace

int spawn_child(const char* program, const char* cwd, char* const* argv, char* const* env, int out_fd, pid_t* pid,
                Spawner spawner) {
  return spawn(&program, 1, cwd, argv, env, out_fd, pid, spawner);
}

int spawn_first(const std::vector<const char*>& candidates, const char* cwd, char* const* argv, char* const* env,
                int out_fd, pid_t* pid, Spawner spawner) {
  return spawn(candidates.data(), candidates.size(), cwd, argv, env, out_fd, pid, spawner);
}

}  // namespace hearth::sandbox
