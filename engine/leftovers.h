// Processes an interrupted attempt left behind. Steps run in their own
// session, so when the engine dies its steps live on; before a resumed run
// starts a step again, the old attempt's processes must be gone, or the
// step's work would happen twice at the same time.
#pragma once

#include <string>

namespace hearth::engine {

/// SIGKILLs the process group of every process on this host whose
/// environment holds HEARTH_RUN_ID=`run_id` and HEARTH_STEP_ID=`step_id`
/// (what the engine gives every step). Matching on the environment, not on
/// a remembered pid, means a reused pid is never hit. Processes of other
/// users, and ones that cleared their environment, are not found.
/// Returns how many processes matched.
int kill_leftovers(const std::string& run_id, const std::string& step_id);

}  // namespace hearth::engine
