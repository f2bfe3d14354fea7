// Where a granted program runs (commands/broker.h). A granted program holds
// secrets and runs on the host's side of the sandbox, so it gets the host's
// own files, but not the power to change them: a mount namespace, prepared
// once per step attempt, in which every mount of the host is read-only and
// nosuid, and only the workspace and the broker's private directory of the
// attempt are writable, at their own paths (JailSpec). As root, the program
// also runs as the run's unprivileged host id (the one its sandbox runs as,
// idmap.h), and what the jail binds is id-mapped from its owner to that id.
//
// The argv check of the broker (paths.h) stays the first line: the jail is
// what holds when a path check is wrong (a symlinked parent created after
// the check, an option the check does not know).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

/// What a jail holds beyond the host's read-only root, each at its own host
/// path, placed in this order: the workspace, then `read_only`, `hidden`
/// and `writable`. Where a directory on the way to one is closed to the
/// jail's user (a 0700 home, the engine's 0700 grants directory), an empty
/// tmpfs covers it and holds only the way through: the program reaches
/// what the jail holds and nothing else there.
struct JailSpec {
  std::string workspace;              // writable
  std::vector<std::string> read_only; // host directories the program may read (a checkout's object database, .hearth)
  std::vector<std::string> hidden;    // host directories covered by an empty tmpfs (the engine's state)
  std::vector<std::string> writable;  // more writable directories (the broker's private directory)
};

/// One program to start: execve(program, argv, env) in `cwd` (a host path),
/// with stdio[0..2] as its standard descriptors and nothing else open. It
/// leads a session of its own (one process group to kill), with default
/// signal dispositions, an empty mask and no_new_privs.
struct ProgramStart {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* env = nullptr;
  const char* cwd = nullptr;
  int stdio[3] = {-1, -1, -1};
};

/// A started program: its pid and a pidfd (close-on-exec; the caller owns it
/// and reaps the child).
struct StartedProgram {
  pid_t pid = -1;
  int pidfd = -1;
};

/// A prepared jail, or the host itself (no jail: the local backend, whose
/// steps run on the host already). Immutable once prepared: one jail serves
/// every call of one step attempt, from the loop thread.
class Jail {
 public:
  /// The host: programs start as the engine's user, in its mount namespace.
  static std::shared_ptr<const Jail> host();
  /// A jail as described above. `id` (as root only): the host uid and gid
  /// programs run as; `mapping_for(uid, gid)` gives a user namespace that
  /// maps that owner to `id` (SandboxIds::mapping), used while preparing.
  /// Without `id` (an unprivileged engine) the jail is a user namespace of
  /// its own mapping only the engine's ids, in which programs keep them.
  static Result<std::shared_ptr<const Jail>> prepare(const JailSpec& spec, std::optional<std::pair<uid_t, gid_t>> id,
                                                     const std::function<Result<int>(uid_t, gid_t)>& mapping_for);
  ~Jail();
  Jail(const Jail&) = delete;
  Jail& operator=(const Jail&) = delete;

  /// Starts a program in the jail. Returns once it has exec'd; an error
  /// (cannot exec, cannot enter the jail) names the program and the cause.
  Result<StartedProgram> start(const ProgramStart& p) const;
  /// False for host().
  bool isolated() const { return mntns_fd_ >= 0; }
  /// The host uid programs run as.
  uid_t uid() const { return uid_; }

 private:
  Jail() = default;
  int userns_fd_ = -1;  // unprivileged: the jail's own user namespace
  int mntns_fd_ = -1;
  bool switch_ids_ = false;  // as root: setresuid/setresgid to uid_/gid_
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace hearth::sandbox
