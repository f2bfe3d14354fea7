// Private to sandbox/: what every child Hearth starts does between clone and
// exec to give up what it inherited, in one place. Used by the sandbox's
// first process (child.cpp), a granted program's child (jail.cpp) and each
// command that hearth-stepbox and the local backend start (spawn_child.cpp).
//
// Every function is a few system calls: async-signal-safe, no allocation,
// no lock (these children share the engine's memory until they exec). Each
// returns 0, or -1 with errno set, which the caller reports over its own
// error channel (a field of the plan it shares with its parent).
#pragma once

#include <sys/types.h>

#include <mutex>

namespace hearth::sandbox::child_setup {

/// For the parent, never the child: held across the clone of every child
/// that shares this memory (CLONE_VM) and changes its credentials (a user
/// namespace entered or made, ids or capabilities dropped) or writes its id
/// maps. The kernel keeps the dumpable flag in the memory, not the process,
/// so such a child changes it for the engine and for every other child
/// sharing it: write_id_maps in one child failed with EACCES when another,
/// at that moment, dropped its privileges. CLONE_VFORK returns only once the
/// child has exec'd or exited, so the lock covers its whole life here; the
/// cost is that the engine's threads make these children one at a time.
/// Not taken by an engine running as root: the flag only decides whether
/// the memory's /proc files belong to root, and root's children may write
/// them either way.
std::unique_lock<std::mutex> one_child_at_a_time();

/// In a user namespace this child's clone has just created (unprivileged):
/// denies setgroups, then writes `uid_map` and `gid_map` ("inside outside
/// 1"), the only maps an unprivileged process may write. The engine is not
/// dumpable, so neither is this copy of it, and its /proc/self files belong
/// to root: the child is dumpable only while it writes them (it has run
/// nothing yet), then not again until exec replaces this memory.
int write_id_maps(const char* uid_map, const char* gid_map);

/// Enters the user namespace `fd` (no-op for -1): the child gets every
/// capability in it, so drop_privileges must follow.
int enter_user_namespace(int fd);

/// Whom the child becomes. `switch_ids`: setgroups(0, none), setresgid and
/// setresuid to `gid` and `uid`; otherwise it keeps its ids.
struct Identity {
  bool switch_ids = false;
  uid_t uid = 0;
  gid_t gid = 0;
  /// The highest capability this kernel knows (last_capability()); the
  /// bounding set is emptied from 0 up to it.
  int last_cap = 63;
};

/// The highest capability number of this kernel
/// (/proc/sys/kernel/cap_last_cap), or 63 when it cannot be read. For the
/// parent to call once: a child then makes no call for numbers the kernel
/// lacks (each would fail with EINVAL).
int last_capability();

/// Gives up every capability for good: empties the bounding set (no file
/// capability nor setuid-root program can bring one back), becomes `who`
/// (raw system calls: glibc's wrappers would ask the engine's threads, whose
/// memory this is, to change their ids too; the parent-death signal, which
/// an id change resets, is set again), then clears the ambient, effective,
/// permitted and inheritable sets.
int drop_privileges(Identity who);

/// no_new_privs: exec grants nothing (setuid bits, file capabilities).
int no_new_privs();

/// Leads a session of its own, hence a process group that can be killed whole.
int new_session();

/// Makes `fds[0..2]` the standard descriptors. Each is first copied above 2,
/// so one dup2 cannot overwrite another's source.
int set_stdio(const int fds[3]);

/// Every descriptor above 2 closes at exec, whatever its origin: the
/// engine's own, one the engine's parent left open (`exec 7<file; hearth
/// run`), a pipe of the caller's. Marked close-on-exec rather than closed
/// now, so a descriptor the child still execs through lasts until execveat;
/// call it after everything the child opens for itself.
int close_inherited();

/// Every signal disposition back to default: the engine's handlers must not
/// run in its memory from another process (signals stay blocked until
/// unblock_signals, just before exec).
void default_signals();

/// Empties the signal mask: the program starts with nothing blocked.
void unblock_signals();

}  // namespace hearth::sandbox::child_setup
