// The words of a run's status, for the store, JSON and the command line.
// Declared with the public RunStatus (hearth/engine.h), which the engine uses
// too. Compiled into the engine's library and into libhearth, which exports
// it (api/meson.build).
#include "hearth/engine.h"

namespace hearth {

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::running: return "running";
    case RunStatus::succeeded: return "succeeded";
    case RunStatus::failed: return "failed";
    case RunStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace hearth
