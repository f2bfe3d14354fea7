// Run ids: "YYYYMMDD-HHMMSS-xxxxxx" (UTC time, then 6 random hex digits),
// sortable by start time and readable in a terminal.
#pragma once

#include <string>

namespace hearth::engine {

std::string new_run_id();

/// True when `id` can name a run: 1-128 characters of [A-Za-z0-9._-].
bool valid_run_id(const std::string& id);

}  // namespace hearth::engine
