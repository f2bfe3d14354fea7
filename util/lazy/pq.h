// The lazily opened libpq (util/lazy_library.h).
#pragma once

#include "util/lazy_library.h"

namespace hearth::lazy {

/// libpq.so.5; opened by the first forwarded call or open().
LazyLibrary& pq_library();

}  // namespace hearth::lazy
