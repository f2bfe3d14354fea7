// Plain TOML parsing behind our interface: text in, JSON out. Used where a
// TOML document is data (the conformance suite, tools); workflow files go
// through loader.h, which keeps source positions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace hearth::workflows {

enum class TomlJson {
  plain,   // strings, numbers, booleans as JSON; dates and times as strings
  tagged,  // toml-test's encoding: every scalar {"type": ..., "value": "..."}
};

/// Parses `text`. Errors read "<source_name>:line:col: message". Never throws.
Result<nlohmann::json> parse_toml(std::string_view text, const std::string& source_name,
                                  TomlJson encoding = TomlJson::plain);

}  // namespace hearth::workflows
