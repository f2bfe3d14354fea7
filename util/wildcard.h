// One wildcard matcher for the policies: granted-command argument globs
// (commands/policy.h) and the proxies' path-segment globs (proxy/policy.h).
// Iterative with one backtrack point (the last '*'): linear-ish in practice,
// never recursive, so a hostile pattern or text cannot blow the stack.
#pragma once

#include <string_view>
#include <vector>

namespace hearth {

struct WildcardOptions {
  /// '?' stands for exactly one character (otherwise it is itself).
  bool question_mark = false;
  /// Letters match either ASCII case (bytes beyond ASCII only themselves).
  bool fold_ascii_case = false;
  /// Per character of the pattern: true where a '*' or '?' is literal
  /// (escaped). Null: none is. Must be as long as the pattern.
  const std::vector<bool>* escaped = nullptr;
};

/// Whether `text` as a whole matches `pattern`, where '*' stands for any
/// run of characters (the empty one included).
bool wildcard_match(std::string_view pattern, std::string_view text, const WildcardOptions& options = {});

}  // namespace hearth
