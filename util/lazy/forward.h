// Defines a C function of a lazily loaded library (util/lazy_library.h) as a
// forwarder: the first call looks the real function up (opening the library
// if need be), later calls jump straight to it. The signature is the one the
// library's own header declares, so a mismatch does not compile.
#pragma once

#include "util/lazy_library.h"

// Two steps, so that a name the library's header renames (ICU's u_isalnum ->
// u_isalnum_72) is looked up by its real, renamed spelling.
#define HEARTH_LAZY_STRING_(x) #x
#define HEARTH_LAZY_STRING(x) HEARTH_LAZY_STRING_(x)

/// Marks the soname a library is opened by. The binary lists them in its
/// section hearth_lazy_libs (`readelf -p hearth_lazy_libs hearth`), which
/// scripts/release.sh reads to bundle them: ldd does not see them.
#define HEARTH_LAZY_SONAME [[gnu::used, gnu::section("hearth_lazy_libs")]] static

/// HEARTH_LAZY_FORWARD(library, ret, name, (params...), (args...))
#define HEARTH_LAZY_FORWARD(library, ret, name, params, args)                                        \
  extern "C" ret(name) params {                                                                       \
    using Fn = ret(*) params;                                                                          \
    static const Fn real = reinterpret_cast<Fn>((library).require(HEARTH_LAZY_STRING(name)));         \
    return real args;                                                                                  \
  }
