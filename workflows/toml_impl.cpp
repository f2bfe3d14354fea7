// toml++'s implementation, compiled here once: every other file includes
// <toml++/toml.h> for declarations only (TOML_HEADER_ONLY=0, meson.build).
// Linking this instead of libtomlplusplus.so keeps the shared library, and the
// shared C++ runtime it brings, out of `hearth`'s start-up.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
