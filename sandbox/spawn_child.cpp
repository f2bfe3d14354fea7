#include "sandbox/spawn_child.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <cerrno>

namespace hearth::sandbox {

int spawn_child(const char* program, const char* cwd, char* const* argv, char* const* env, int out_fd, pid_t* pid,
                Spawner spawner) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  if (spawner.null_fd >= 0) posix_spawn_file_actions_adddup2(&actions, spawner.null_fd, 0);
  else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  // Last: every descriptor above 2 closes, whatever the caller inherited.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t all, none;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK;
  if (!spawner.clean_signals) flags |= POSIX_SPAWN_SETSIGDEF;
  posix_spawnattr_setflags(&attr, flags);
  int rc = posix_spawn(pid, program, &actions, &attr, argv, env);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc;
}

int spawn_first(const std::vector<const char*>& candidates, const char* cwd, char* const* argv, char* const* env,
                int out_fd, pid_t* pid, Spawner spawner) {
  int err = ENOENT;
  for (const char* c : candidates) {
    int rc = spawn_child(c, cwd, argv, env, out_fd, pid, spawner);
    if (rc == 0) return 0;
    if (rc != ENOENT && rc != ENOTDIR) err = rc;  // like execvp: report the interesting error
    if (rc == EACCES || rc == ENOENT || rc == ENOTDIR) continue;
    return rc;
  }
  return err;
}

}  // namespace hearth::sandbox
