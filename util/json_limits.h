// Parsing JSON that came from outside (a webhook body, --payload, a model's
// response or tool arguments, a cassette, a step's output) with a bound on
// how deeply it nests. nlohmann_json parses any depth, but dumping,
// copying, comparing or validating a value recurses once per level: a
// document nested 100,000 deep parses fine and then overflows the stack of
// whoever touches it next. Every parse of untrusted text goes through here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace hearth {

/// The deepest nesting of arrays and objects accepted: far beyond any real
/// payload (GitHub's run to about 10), far below what recursion can bear.
inline constexpr size_t kMaxJsonDepth = 512;

/// Scans `text` without parsing it (brackets inside strings do not count)
/// and returns an error when arrays and objects nest deeper than `max_depth`:
/// "JSON nests more than 512 levels deep (at byte 2048)". Nothing when within
/// the limit, whether or not the text is otherwise valid JSON.
std::optional<std::string> json_depth_error(std::string_view text, size_t max_depth = kMaxJsonDepth);

/// nlohmann::json::parse with the depth limit, never throwing: the value,
/// or nullopt with `error` (when given) set to why — the depth, or the
/// parser's message with its byte position.
std::optional<nlohmann::json> parse_untrusted_json(std::string_view text, std::string* error = nullptr,
                                                   size_t max_depth = kMaxJsonDepth);

}  // namespace hearth
