// Run and step statuses inside the engine: the public enums (hearth/engine.h).
// Their words (to_string) appear only at the edges: the store's rows, JSON
// and the command line.
#pragma once

#include <string_view>

#include "hearth/engine.h"

namespace hearth::engine {

/// The status a stored word names. A word this version does not know (a
/// database edited by hand) reads as failed: nothing it does not understand
/// is taken for a success.
RunStatus run_status_from(std::string_view word);
StepStatus step_status_from(std::string_view word);

/// Whether a step is done for this run: it will not start again unless
/// resumed with --from.
inline bool terminal(StepStatus s) {
  return s == StepStatus::succeeded || s == StepStatus::failed || s == StepStatus::skipped ||
         s == StepStatus::cancelled;
}

}  // namespace hearth::engine
