// Private to sandbox/: the root a namespaced command sees, as ChildOps.
#pragma once

#include <map>
#include <string>

#include "sandbox/child_plan.h"
#include "sandbox/sandbox.h"
#include "util/status.h"

namespace hearth::sandbox {

/// The part of every sandbox's root that depends only on the host (system
/// directories, the trimmed /etc, /proc, /dev), worked out once: each spawn
/// copies these ops and adds its own (workspace, binds, network files).
class RootTemplate {
 public:
  RootTemplate();

  /// Appends to `plan` every op that builds the root for `iso`, in order,
  /// ending with the host's root detached and the new root read-only.
  /// Errors name the bind that cannot be made (a missing host path, an
  /// inside path under /workspace).
  Status add_ops(const Isolation& iso, ChildPlan& plan);

 private:
  const char* keep(std::string s) { return strings_.emplace_back(std::move(s)).c_str(); }
  void add_system_entry(const std::string& name);  // /usr, /bin, /lib*...
  void add_etc_entry(const std::string& name);
  // Ops binding `host` at `inside` (read-only unless `writable`); the source
  // path string is kept in `store`.
  void bind(std::vector<ChildOp>& ops, std::deque<std::string>& store, const std::string& host, const char* inside,
            bool writable, bool is_dir);
  unsigned long locked_flags(const std::string& host);

  std::deque<std::string> strings_;
  std::vector<ChildOp> head_;  // before the per-spawn ops
  std::vector<ChildOp> tail_;  // after them
  std::map<std::string, unsigned long> flags_cache_;
  std::string resolv_conf_;    // the host's resolv.conf, resolved; empty: none
};

}  // namespace hearth::sandbox
