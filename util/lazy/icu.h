// The lazily opened ICU common library (util/lazy_library.h).
#pragma once

#include "util/lazy_library.h"

namespace hearth::lazy {

/// libicuuc.so.<ICU major>; opened by the first forwarded call or open().
LazyLibrary& icu_library();

}  // namespace hearth::lazy
