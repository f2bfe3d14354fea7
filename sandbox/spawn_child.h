// Private to sandbox/: starting one command in a session of its own.
// Used by the `local` backend on the host and by hearth-stepbox (a namespace
// session's helper) inside the sandbox.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace hearth::sandbox {

/// clone(CLONE_VM | CLONE_VFORK), as posix_spawn: unlike fork(), its cost
/// does not grow with the caller's memory. The child (child_setup.h) gets
/// its own session (so its process group can be killed whole), stdin from
/// /dev/null, `out_fd` as stdout and stderr and no other descriptor
/// (everything above 2 is closed, inherited or not), `cwd` as its
/// directory, default signal dispositions and an empty signal mask. Returns
/// once it has exec'd: 0, or the errno of what failed. `spawner` says what
/// the caller already did once for all its children: `null_fd` (>= 0) is an
/// open /dev/null to use as stdin, and `clean_signals` says the caller's own
/// dispositions are all default (hearth-stepbox resets them at its start),
/// so the child need not reset ~60 of them at every spawn.
struct Spawner {
  int null_fd = -1;
  bool clean_signals = false;
};
int spawn_child(const char* program, const char* cwd, char* const* argv, char* const* env, int out_fd, pid_t* pid,
                Spawner spawner = {});

/// spawn_child of the first of `candidates` (paths of argv[0], in PATH
/// order; path_search.h) that can be executed, like execvp: a candidate
/// missing or not executable is skipped. One child tries them all in turn
/// (one clone per command, however long the PATH). Returns 0 or the most
/// telling errno.
int spawn_first(const std::vector<const char*>& candidates, const char* cwd, char* const* argv, char* const* env,
                int out_fd, pid_t* pid, Spawner spawner = {});

}  // namespace hearth::sandbox
