// The lazily opened libcrypto (util/lazy_library.h).
#pragma once

#include "util/lazy_library.h"

namespace hearth::lazy {

/// libcrypto.so.<OpenSSL major>; opened by the first forwarded call or open().
LazyLibrary& crypto_library();

}  // namespace hearth::lazy
