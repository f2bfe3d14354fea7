// Durations as written in workflow files: "500ms", "30s", "5m", "1h30m", "2h".
#pragma once

#include <chrono>
#include <string_view>

#include "util/status.h"

namespace hearth::workflows {

/// Parses a sequence of <number><unit> with units ms, s, m, h. At least one
/// component; the total must be positive and under 30 days.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Formats for people: "850ms", "12.3s", "4m05s", "1h02m".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace hearth::workflows
