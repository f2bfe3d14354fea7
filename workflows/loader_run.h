// Private to workflows/: the loader's checks of a `run` script that need the
// workflow around it: which interpolations are integer-typed inputs (safe in
// any shell context), where in the file a place in the script is, and the
// warnings `hearth validate` prints. No toml++ here: positions are computed
// from the file's text and verified against it.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/expr.h"
#include "workflows/workflow.h"

namespace hearth::workflows {

/// For each interpolation of `run` in order: true when it is exactly
/// `inputs.<name>` (or `inputs['<name>']`) and `inputs_schema` declares that
/// input `type = "integer"`. The payload is validated against the schema
/// before a run starts, so such a value is digits with an optional sign.
std::vector<bool> integer_interpolations(const expr::Template& run, const nlohmann::json& inputs_schema);

/// The file position of byte `offset` of the string `value`, whose opening
/// quote is at `value_start` in `file_text`; nullopt when the file does not
/// hold that line verbatim (an escape sequence before or after it on the
/// line), so the caller falls back to the value's own position.
std::optional<Location> value_location(std::string_view file_text, Location value_start, std::string_view value,
                                       size_t offset);

/// The byte offset within `script` of 1-based (line, column).
size_t script_offset(std::string_view script, size_t line, size_t column);

/// Offsets of the lines of `run` (as written, with `${{ }}`) that interpolate
/// a value and append it to $HEARTH_OUTPUT without the delimiter form: a
/// newline in the value would add output lines of its own.
std::vector<size_t> unsafe_output_lines(std::string_view run);

/// The warning for such a line.
extern const char* const kUnsafeOutputWarning;

}  // namespace hearth::workflows
