// $GITHUB_OUTPUT (and the other file commands: GITHUB_ENV, GITHUB_STATE):
// "name<<DELIMITER\nvalue\nDELIMITER\n", the form the runner reads back for
// any value, multi-line ones included. The delimiter is
// "ghadelimiter_<random UUID>", as the Actions toolkit writes it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::ci {

/// "ghadelimiter_" + a random version-4 UUID (from the OS's random source).
std::string random_delimiter();

/// One entry with this delimiter. Refused, with the toolkit's message, when
/// the name or the value contains the delimiter.
Result<std::string> format_file_command(std::string_view name, std::string_view value, std::string_view delimiter);

/// Appends the entries to the file at `path`, each with a fresh random
/// delimiter that does not occur in its name or value. The error names the
/// file.
Status append_file_commands(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries);

}  // namespace hearth::ci
