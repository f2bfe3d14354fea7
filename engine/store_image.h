#pragma once
// The bytes of a new state database: the file SqliteStore::build_new_file
// makes by SQL (2 KiB pages, the schema, the engine's parts' tables, WAL
// mode), made once when hearth is built (store_image_gen.cpp). A new store
// is this image written, synced and renamed into place: no SQL runs.
#include <string_view>

namespace hearth::engine {

/// Empty when the build could not make the image (a cross build cannot run
/// its generator): a new store is then made by SQL.
std::string_view fresh_store_image();

}  // namespace hearth::engine
