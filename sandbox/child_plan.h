// Private to sandbox/: everything the namespace backend's child does between
// clone() and execve(), computed beforehand by the parent. The child shares
// the engine's memory (CLONE_VM | CLONE_VFORK, like posix_spawn), so it only
// reads this plan and makes system calls: no allocation, no locks.
#pragma once

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

/// One step of building the sandbox's root, run in order by the child.
struct ChildOp {
  /// idmap_bind_op: a bind of `a` at `b` through open_tree, id-mapped with
  /// the user namespace `fd` and given the MOUNT_ATTR_* bits in `flags`.
  /// chown_op: `a` to uid `flags`, gid `len`.
  /// attach_op: mounts at `b` the copy of the prepared root's part number
  /// `flags` (ChildPlan::root_trees).
  enum Kind {
    mount_op, mkdir_op, symlink_op, touch_op, write_file_op, pivot_op, umount_op, rmdir_op, idmap_bind_op, chown_op,
    attach_op
  };
  Kind kind;
  const char* a = nullptr;  // source (mount, symlink target) or path
  const char* b = nullptr;  // target path (mount, symlink)
  const char* fstype = nullptr;
  unsigned long flags = 0;  // mount flags; or the mode of mkdir/touch/write_file
  const char* data = nullptr;  // mount data; or the file's contents
  size_t len = 0;              // length of the file's contents
  int fd = -1;                 // idmap_bind_op: the mapping's user namespace
};

struct ChildPlan {
  /// Owns every string the plan points to (a deque: addresses stay put).
  const char* keep(std::string s) { return strings.emplace_back(std::move(s)).c_str(); }

  std::deque<std::string> strings;
  // Unprivileged: the child's new user namespace maps 1000 to the engine's
  // own ids ("1000 <outer uid> 1"). As root these are null: the child is
  // cloned without a user namespace, builds the root as root, and then
  // enters `userns_fd` (prepared by the engine: "1000 <sandbox host id> 1",
  // idmap.h) and becomes 1000 in it, before exec.
  const char* uid_map = nullptr;
  const char* gid_map = nullptr;
  int userns_fd = -1;
  /// >= 0 (unprivileged, the engine's held user namespace, idmap.h): the
  /// engine's child enters it and clones the sandbox's first process there
  /// (run_nested_child_plan) with `inner_flags`, so its other namespaces
  /// belong to the held one and it may copy the prepared root, as root
  /// does; that process writes `uid_map` and `gid_map` last, in a user
  /// namespace it unshares inside the held one just before exec.
  int held_userns = -1;
  int inner_flags = 0;          // namespace flags of the inner clone
  char* inner_stack = nullptr;  // its stack's top (not the outer child's)
  int inner_pid = -1;           // written by the outer child: the sandbox's first process
  int last_cap = 63;  // child_setup::last_capability(), read once by the engine
  /// >= 0 (as root): the prepared root's mount namespace (mounts.h). Before
  /// the ops, the child enters it, copies each of `root_parts` (with what is
  /// mounted below) into `root_trees` (sized by the engine), and returns to
  /// its own mount namespace; attach_op ops mount the copies.
  int root_ns = -1;
  std::vector<const char*> root_parts;
  std::vector<int> root_trees;
  std::vector<int> cgroup_procs;  // open cgroup.procs files the child joins
  std::vector<ChildOp> ops;
  const char* hostname = "hearth";
  bool loopback_up = false;  // bring `lo` up (own network namespace)
  /// >= 0 (as root): the sandbox's network namespace, made ahead with `lo`
  /// up (netns_pool.h); the child enters it instead of its clone making one.
  int netns_fd = -1;
  /// Loopback forwards: after `lo` is up, the child listens on each address
  /// (127.0.0.1:port, in the sandbox's network namespace) and sends the
  /// listening sockets, in order, in one SCM_RIGHTS message on
  /// `listen_channel` (its end of a socketpair; the engine keeps the other).
  std::vector<sockaddr_in> listen_addrs;
  std::vector<const char*> listen_names;  // "127.0.0.1:port", for errors
  int listen_channel = -1;
  const char* cwd = "/";
  std::vector<std::pair<int, rlimit>> rlimits;
  sock_fprog seccomp[2]{};  // installed in order (the allow-list, then the deny-list); empty: none
  int out_fd = -1;       // becomes stdout and stderr
  int exec_fd = -1;  // >= 0: execveat this open file (a session's helper), not the candidates
  /// >= 0 (a one-shot command): pid 1 execveats this file, the init
  /// (init_main.cpp), with `init_argv` ("hearth-init", report_fd, the number
  /// of candidates, the candidates, then argv) and `envp`; the init starts
  /// the command as its child (the leader of a session of its own), forwards
  /// the engine's SIGTERM to its process group and exits with its status.
  /// The engine resumes at that exec, then reads `report_fd`'s other end:
  /// EOF once the command has exec'd, or the errno of its failed exec.
  /// -1: the program exec'd is itself pid 1 (a session's hearth-stepbox).
  int init_fd = -1;
  int report_fd = -1;
  std::vector<char*> init_argv;  // null-terminated
  std::vector<const char*> candidates;  // paths of the program to try, in order
  std::vector<char*> argv, envp;        // null-terminated

  // Written by the child when it fails before exec.
  const char* failed_what = nullptr;
  const char* failed_path = nullptr;
  int failed_errno = 0;
};

/// The child: runs `plan` (a ChildPlan*) and execs. Returns only on failure,
/// after recording it in the plan; the caller _exit()s.
int run_child_plan(void* plan) noexcept;

/// The engine's child when `held_userns` >= 0: enters that user namespace,
/// clones the sandbox's first process (run_child_plan, CLONE_PARENT: the
/// engine's child, not this one's) and returns once it has exec'd or
/// failed, with its pid in `inner_pid`: 0, or 127 with the failure recorded.
/// The caller _exit()s with it, and the engine reaps this process.
int run_nested_child_plan(void* plan) noexcept;

/// A mount namespace built by `ops` (a prepared root, mounts.h), as an open
/// descriptor that keeps it. Costs one short-lived process sharing the
/// caller's memory. Needs root, or `userns_fd`: a user namespace the caller
/// has every capability in (its held one), entered first, which then owns
/// the mount namespace. Errors name the op that failed.
Result<int> make_prepared_root(const std::vector<ChildOp>& ops, int userns_fd = -1);

}  // namespace hearth::sandbox
