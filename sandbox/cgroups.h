// Private to sandbox/: memory, pids and cpu limits for a whole sandbox
// through a cgroup of its own, v2 or v1, where the host lets us create one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace hearth::sandbox {

class Cgroups {
 public:
  /// Finds, once, where this process may create cgroups for each controller.
  Cgroups();

  /// One sandbox's cgroups: `procs` are open cgroup.procs files the child
  /// joins (writing "0") before it execs.
  struct Group {
    std::vector<std::string> dirs;
    std::vector<int> procs;
  };

  /// Creates the cgroups `iso`'s limits need, with the limits written.
  /// Limits no controller can carry are left out: warnings() names them.
  Result<Group> create(const Isolation& iso);
  /// Closes the files and removes the directories (a busy one is retried
  /// on the next call and at destruction).
  void release(Group& g);
  /// The same without a Cgroups, for a group whose owner is gone, once its
  /// processes are dead: a directory the kernel still finds busy after
  /// 20 ms is left behind (empty).
  static void remove(Group& g);
  /// One sentence per limit of `iso` the cgroups here cannot enforce.
  std::vector<std::string> warnings(const Isolation& iso) const;
  ~Cgroups();

 private:
  struct Controller {
    std::string base;  // our cgroup's directory for this controller; empty: unavailable
    bool v2 = false;
  };
  Controller memory_, pids_, cpu_;
  std::string why_not_;  // why no cgroup can be created, for warnings
  std::vector<std::string> leftovers_;
  uint64_t counter_ = 0;
};

}  // namespace hearth::sandbox
