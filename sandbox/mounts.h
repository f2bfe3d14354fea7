// Private to sandbox/: the root a namespaced command sees, as ChildOps.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/child_plan.h"
#include "sandbox/sandbox.h"
#include "util/status.h"

namespace hearth::sandbox {

/// Who the command is, as far as its root is concerned. Inside it is
/// always the user 1000 (`hearth`).
struct RootIdentity {
  /// The command's ids as the process building the root names them (owner
  /// of its home and of an empty workspace): 1000 in the unprivileged case
  /// (a user namespace of its own), the engine's own ids in its held user
  /// namespace (which maps them to themselves), the sandbox's host id as root.
  uid_t uid = 1000;
  gid_t gid = 1000;
  /// As root: the user namespace (an fd) that id-maps a bind whose host
  /// owner is (uid, gid) to the command's id (idmap.h), or an error. Null:
  /// plain binds (unprivileged: the sandbox's user namespace maps the
  /// engine's own ids).
  std::function<Result<int>(uid_t, gid_t)> mapping_for;
};

/// The part of every sandbox's root that depends only on the host (system
/// directories, the trimmed /etc, /dev), worked out once: each spawn copies
/// these ops and adds its own (/proc, scratch tmpfs, workspace, binds,
/// network files).
///
/// Where it may (use_prepared_roots) it goes further: that part is built
/// once, for real, in a mount namespace of its own (a "prepared root", kept
/// by this object), and each
/// sandbox copies its top-level mounts (/usr, /etc, /dev, …) from there with
/// open_tree instead of making ~50 mounts, files and links itself. The
/// prepared mounts are read-only and private: no sandbox can change them
/// or see another's. Used from one thread.
class RootTemplate {
 public:
  RootTemplate();
  ~RootTemplate();
  RootTemplate(const RootTemplate&) = delete;
  RootTemplate& operator=(const RootTemplate&) = delete;

  /// Lets add_ops copy from prepared roots (made on first use): as root
  /// (`userns_fd` -1), or, for an unprivileged engine, inside its held user
  /// namespace `userns_fd` (not taken; must outlive this object), which then
  /// owns them; only a child in that namespace can copy them
  /// (ChildPlan::held_userns). Without this call the root is built in place.
  void use_prepared_roots(int userns_fd) {
    prepared_allowed_ = true;
    prepared_userns_ = userns_fd;
  }

  /// Appends to `plan` every op that builds the root for `iso` and `who`,
  /// in order, ending with the host's root detached and the new root
  /// read-only. Errors name the bind that cannot be made (a missing host
  /// path, an inside path under /workspace, no id mapping).
  Status add_ops(const Isolation& iso, const RootIdentity& who, ChildPlan& plan);

 private:
  const char* keep(std::string s) { return strings_.emplace_back(std::move(s)).c_str(); }
  // Copies `host` (e.g. /usr, /etc/ssl) into the ops: a symlink as the same
  // symlink (into `links`), a directory (or, unless `dirs_only`, a file) as
  // a read-only bind (into `binds`), returning its inside path; anything
  // missing is skipped.
  const char* add_host_entry(const std::string& host, std::vector<ChildOp>& links, std::vector<ChildOp>& binds,
                             bool dirs_only);
  // The ops that build a prepared root (in its own mount namespace):
  // system_, /etc and /dev as tmpfs of their own, all read-only, the host
  // detached. With `resolv_conf_mount_point`, /etc has an empty
  // resolv.conf to bind the host's over (network = host).
  std::vector<ChildOp> prepared_root_ops(bool resolv_conf_mount_point);
  // The prepared root's namespace for this variant, made on first use; -1
  // where it cannot be made (the root is then built in place).
  int prepared_root(bool with_resolv_conf);
  // True when a bind of `iso` goes inside a part a prepared root copies.
  bool binds_into_prepared_parts(const Isolation& iso) const;
  // The ops of a root whose host-only parts are copies from `ns`.
  void add_prepared_ops(int ns, ChildPlan& plan);
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
  std::vector<ChildOp> prefix_;  // a tmpfs root, pivoted into, the host at /oldroot
  std::vector<ChildOp> links_;   // /bin, /lib… where they are symlinks on the host
  std::vector<ChildOp> system_;  // binds of /usr, /bin, /lib… where they are directories
  std::vector<const char*> tops_;  // the mount points of system_
  std::vector<ChildOp> etc_;     // the contents of /etc
  std::vector<ChildOp> dev_;     // the contents of /dev
  std::vector<ChildOp> own_;     // what each sandbox mounts itself (/proc, devpts, shm, /tmp)
  std::vector<ChildOp> head_;    // a root built in place, before the per-spawn ops
  std::vector<ChildOp> tail_;  // after them
  std::map<std::string, unsigned long> flags_cache_;
  std::string resolv_conf_;    // the host's resolv.conf, resolved; empty: none
  // The host files bound (not directories): a bind pins the file it was
  // made of, so the prepared root is made again when one is replaced.
  std::vector<std::string> etc_files_;
  std::vector<std::pair<dev_t, ino_t>> bound_files() const;
  struct Prepared {
    bool tried = false;
    int ns = -1;  // the prepared root's mount namespace
    std::vector<std::pair<dev_t, ino_t>> files;  // bound_files() when it was made
  };
  Prepared prepared_[2];  // without, with a resolv.conf mount point
  bool prepared_allowed_ = false;
  int prepared_userns_ = -1;
};

}  // namespace hearth::sandbox
