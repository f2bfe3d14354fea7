// The file a step writes its outputs to ($HEARTH_OUTPUT), in the format of
// GitHub's $GITHUB_OUTPUT:
//   key=value                 one line; the value runs to the end of the line
//   key<<DELIMITER            multi-line: the lines up to a line equal to
//   line 1                    DELIMITER are the value, joined with "\n"
//   DELIMITER
// Lines may end in "\n" or "\r\n". Empty lines between entries are ignored.
// A later key overrides an earlier one.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hearth::engine {

/// Largest output file accepted; a bigger one fails the step with a message.
inline constexpr size_t kMaxOutputFileBytes = 1 << 20;

/// The output file's name in the attempt's own directory (at /run/hearth in
/// the namespace sandbox). The engine reads it with read_regular_beneath()
/// (util/safe_open.h): a symlink, FIFO, device or hard link there fails the
/// step rather than being followed.
inline constexpr const char* kOutputFileName = "output";

/// Parses the text of an output file. Errors give the 1-based line and what
/// is wrong: a line with neither '=' nor '<<', an empty key, a key with
/// characters outside [A-Za-z0-9_-], a heredoc whose delimiter never comes.
Result<std::map<std::string, std::string>> parse_output_file(std::string_view text);

}  // namespace hearth::engine
