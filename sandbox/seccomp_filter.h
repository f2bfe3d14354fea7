// Private to sandbox/: the seccomp filters of every namespaced command.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

/// Two compiled programs (libseccomp, exported once as BPF), installed in
/// this order (docs/sandbox.md, "System calls"):
/// - `allow`: the system calls real steps make (shells, coreutils, git,
///   compilers, node, python) pass; any other fails with ENOSYS, as on a
///   kernel that lacks it, so a call added to the kernel later is closed
///   until it is listed. A call of another architecture (i386 `int 0x80`,
///   x32) kills the process.
/// - `deny`: the escape and kernel-attack surface fails with EPERM, as it
///   always has (the kernel takes the newest filter's errno when both fail
///   a call), including arguments `allow` cannot tell apart: clone with a
///   namespace flag, personality flags, ioctl TIOCSTI.
struct SeccompPrograms {
  std::vector<sock_filter> allow, deny;
};

/// Compiles them anew (libseccomp). Fails when a listed system call cannot
/// be resolved by this libseccomp and has no number of its own in the list.
Result<SeccompPrograms> build_seccomp_filter();

/// The programs every sandbox of this process installs, the same for its
/// life: those libseccomp compiled when Hearth was built, or, in a cross
/// build, compiled by the first call (thread-safe; a failure, say out of
/// descriptors for the export, is not kept: the next call compiles again).
/// Installing them in a sandbox's child is one prctl each, with no
/// allocation after the clone (seccomp_programs.cpp).
Result<const SeccompPrograms*> seccomp_programs();

}  // namespace hearth::sandbox
