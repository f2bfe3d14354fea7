// Private to sandbox/: the seccomp filter of every namespaced command.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

/// The compiled filter (libseccomp, exported once as BPF): the escape and
/// kernel-attack surface listed in docs/sandbox.md fails with EPERM; a
/// system call of another architecture kills the process.
Result<std::vector<sock_filter>> build_seccomp_filter();

}  // namespace hearth::sandbox
