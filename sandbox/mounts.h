// Private to sandbox/: the root a namespaced command sees, as ChildOps.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>

#include "sandbox/child_plan.h"
#include "sandbox/sandbox.h"
#include "util/status.h"

namespace hearth::sandbox {

/// Who the command is, as far as its root is concerned. Inside it is
/// always the user 1000 (`hearth`).
struct RootIdentity {
  /// The command's ids as the process building the root names them (owner
  /// of its home and of an empty workspace): 1000 in the unprivileged case
  /// (a user namespace of its own), the sandbox's host id as root.
  uid_t uid = 1000;
  gid_t gid = 1000;
  /// As root: the user namespace (an fd) that id-maps a bind whose host
  /// owner is (uid, gid) to the command's id (idmap.h), or an error. Null:
  /// plain binds (unprivileged: the sandbox's user namespace maps the
  /// engine's own ids).
  std::function<Result<int>(uid_t, gid_t)> mapping_for;
};

/// The part of every sandbox's root that depends only on the host (system
/// directories, the trimmed /etc, /proc, /dev), worked out once: each spawn
/// copies these ops and adds its own (workspace, binds, network files).
class RootTemplate {
 public:
  RootTemplate();

  /// Appends to `plan` every op that builds the root for `iso` and `who`,
  /// in order, ending with the host's root detached and the new root
  /// read-only. Errors name the bind that cannot be made (a missing host
  /// path, an inside path under /workspace, no id mapping).
  Status add_ops(const Isolation& iso, const RootIdentity& who, ChildPlan& plan);

 private:
  const char* keep(std::string s) { return strings_.emplace_back(std::move(s)).c_str(); }
  // Copies `host` (e.g. /usr, /etc/passwd) into the head ops: a symlink as
  // the same symlink, a directory (or, unless `dirs_only`, a file) as a
  // read-only bind; anything missing is skipped.
  void add_host_entry(const std::string& host, bool dirs_only);
  // Ops binding `host` at `inside` (read-only unless `writable`); the source
  // path string is kept in `store`.
  void bind(std::vector<ChildOp>& ops, std::deque<std::string>& store, const std::string& host, const char* inside,
            bool writable, bool is_dir);
  // A bind of a user's path (workspace, --ro/--rw, grants): id-mapped from
  // its owner when `who` says so, else as bind().
  Status user_bind(ChildPlan& plan, const RootIdentity& who, const std::string& host, const char* inside,
                   bool writable, bool is_dir);
  void add_proc_protection();
  unsigned long locked_flags(const std::string& host);

  std::deque<std::string> strings_;
  std::vector<ChildOp> head_;  // before the per-spawn ops
  std::vector<ChildOp> tail_;  // after them
  std::map<std::string, unsigned long> flags_cache_;
  std::string resolv_conf_;    // the host's resolv.conf, resolved; empty: none
};

}  // namespace hearth::sandbox
