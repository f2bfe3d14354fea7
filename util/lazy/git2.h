// The lazily opened libgit2 (util/lazy_library.h).
#pragma once

#include "util/lazy_library.h"

namespace hearth::lazy {

/// libgit2.so.<version built against>; opened by the first git_* call or open().
LazyLibrary& git2_library();

}  // namespace hearth::lazy
