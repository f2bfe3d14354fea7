// Private to engine/: directory trees removed off the loop thread.
//
// Removing a directory changes the filesystem's metadata, and on a journaled
// filesystem (ext4) that waits for the journal commit an fsync elsewhere has
// started: under `hearth serve`'s load an rmdir on the loop thread took 64 ms.
// A run's scratch and an attempt's directory are the engine's own and
// nothing reads them once they are handed here.
#pragma once

#include <uv.h>

#include <string>
#include <vector>

namespace hearth::engine {

/// Removes each of `trees` (util/safe_open.h remove_tree: never following a
/// link) on libuv's thread pool, in the order asked, by one job at a time in
/// the whole process. The loop that started that job stays alive until
/// every tree queued meanwhile is removed. Where the pool cannot take it,
/// removes them here.
void remove_later(uv_loop_t* loop, std::vector<std::string> trees);

}  // namespace hearth::engine
