// Names in messages: "did you mean" for near misses, and lists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::workflows {

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a plausible typo (distance <= max(1, len/3)); empty otherwise.
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" or "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

/// "a, b, c": names listed in a message.
std::string join(const std::vector<std::string>& names);

}  // namespace hearth::workflows
