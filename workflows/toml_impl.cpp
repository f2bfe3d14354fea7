// toml++'s implementation, compiled here once: every other file includes
// <toml++/toml.h> for declarations only (TOML_HEADER_ONLY=0, meson.build).
// Linking this instead of libtomlplusplus.so keeps the shared library, and the
// shared C++ runtime it brings, out of `hearth`'s start-up.
//
// The distributions build the library without its internal assertions; so
// does this file whatever the build type: a parser assertion on hostile bytes
// must not abort a debug build where the shipped library reports a parse error.
#define TOML_ASSERT(expr) static_cast<void>(0)
#define TOML_IMPLEMENTATION
#include "workflows/tomlpp.h"
