// Interpolation of `${{ }}` values into `run` scripts without letting a value
// become shell code.
//
// A value never enters the script text. Each interpolation is replaced by a
// reference to an environment variable that holds the value, written so that
// the shell expands it exactly once and as a single word:
//   bare context          ${{ x }}     ->  "${HEARTH_EXPR_1}"
//   inside "..."          "a ${{ x }}" ->  "a ${HEARTH_EXPR_1}"
//   inside '...'          'a ${{ x }}' ->  'a '"${HEARTH_EXPR_1}"''
//   unquoted heredoc body               ->  ${HEARTH_EXPR_1}
//   inside $( ... ) or `...` the context starts over as bare.
// An interpolation inside a quoted heredoc (<<'EOF' or <<"EOF") cannot be made
// safe (the shell expands nothing there): that is a load-time error.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::workflows {

struct ShellScript {
  /// The script with every interpolation replaced by a variable reference.
  std::string text;
  /// For each interpolation in source order: the byte offset of its `${{` in
  /// the original script, and the variable name that replaces it.
  struct Slot {
    size_t offset;
    std::string variable;  // HEARTH_EXPR_1, HEARTH_EXPR_2, ...
  };
  std::vector<Slot> slots;
};

/// Rewrites `script`, whose interpolations are the [begin, end) ranges `spans`
/// (from `${{` to past its `}}`, ascending). Errors name the 1-based line and
/// column within `script` ("line 3, column 12: interpolation inside the quoted
/// heredoc started on line 2 ...", "line 1, column 14: interpolation in 'let':
/// ..."). An interpolation where bash evaluates its value as arithmetic or code
/// (shell_contexts.h) is refused unless `integer[i]` says the value of
/// interpolation i is known to be an integer (`integer` may be shorter).
Result<ShellScript> rewrite_shell_interpolations(std::string_view script,
                                                 const std::vector<std::pair<size_t, size_t>>& spans,
                                                 const std::vector<bool>& integer = {});

}  // namespace hearth::workflows
