// The lazily opened libcurl (util/lazy_library.h). Code about to make its first
// HTTP request may call curl_library().open() to report a missing libcurl as an error.
#pragma once

#include "util/lazy_library.h"

namespace hearth::lazy {

/// libcurl.so.4; opened by the first curl_* call or open().
LazyLibrary& curl_library();

}  // namespace hearth::lazy
