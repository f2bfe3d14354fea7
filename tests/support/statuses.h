// Run and step statuses printed by their words in Boost.Test's messages.
// Public API only: the public_api suites include it too.
#pragma once

#include <ostream>

#include <hearth/engine.h>

namespace hearth {
inline std::ostream& operator<<(std::ostream& os, RunStatus s) { return os << to_string(s); }
inline std::ostream& operator<<(std::ostream& os, StepStatus s) { return os << to_string(s); }
}  // namespace hearth
