// What an API proxy lets through: path globs, rules, the deny-then-allow
// decision, body patterns and rate limits. Pure functions and values: no
// I/O, no libuv. The grammar is in docs/proxies.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/path.h"
#include "util/status.h"

namespace hearth::proxy {

/// Where something was written in the workflow file (1-based).
struct SourcePos {
  int line = 0;
  int column = 0;
};

// ---- paths ----

/// Whether `path` (normalized, see normalize_path) matches `pattern`. Both
/// are split at '/'. A segment `**` matches zero or more whole segments; a
/// segment `*` matches exactly one non-empty segment; inside a segment, `*`
/// matches any run of characters (never a '/'); every other character
/// matches itself: case-sensitively, or ignoring ASCII case with `fold_case`.
bool glob_match(std::string_view pattern, std::string_view path, bool fold_case = false);

/// Why `pattern` is not a valid path glob (must start with '/'; `**` only as
/// a whole segment; no '?', '#', '\\' or dot segments), or "" when it is.
std::string glob_problem(std::string_view pattern);

// ---- bodies, sizes, rates ----

/// A PCRE2 pattern searched for in request bodies (binary-safe, no UTF
/// check). Cheap to copy: the compiled code is shared.
class BodyPattern {
 public:
  enum class Match { yes, no, too_complex };
  /// Errors name the offset and PCRE2's reason.
  static Result<BodyPattern> compile(const std::string& pattern);
  /// `too_complex`: the search hit PCRE2's match limit (a hostile body
  /// against a backtracking pattern); callers fail closed.
  Match search(std::string_view body) const;
  const std::string& text() const { return text_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string text_;
};

/// "16KiB", "1M", "512", "2 GB": a whole number of bytes with an optional
/// unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB (all powers of 1024).
Result<uint64_t> parse_byte_size(std::string_view text);

struct Rate {
  uint64_t count = 0;
  std::chrono::milliseconds per{1000};
  std::string text;  // as written: "60/min"
};

/// "N/sec", "N/min", "N/hour" (also s, second, m, minute, h): N >= 1.
Result<Rate> parse_rate(std::string_view text);

/// A token bucket: holds up to `count` tokens, refilled at count per `per`,
/// full at first. Time is passed in (milliseconds of any monotonic clock).
class TokenBucket {
 public:
  explicit TokenBucket(const Rate& rate, uint64_t now_ms);
  /// Whether a token is there now (refilling first); does not take it.
  bool ready(uint64_t now_ms);
  void take() { tokens_ -= 1.0; }
  /// Whole seconds until a token is there (at least 1), for Retry-After.
  uint64_t retry_after_s(uint64_t now_ms);

 private:
  void refill(uint64_t now_ms);
  double capacity_, per_ms_, tokens_;
  uint64_t last_ms_;
};

// ---- rules and the decision ----

struct Rule {
  std::vector<std::string> methods;   // upper case; empty: any method
  std::string path = "/**";           // a glob (above)
  std::optional<uint64_t> body_max;   // allow rules: the body is at most this many bytes
  std::optional<BodyPattern> body;    // the pattern is found in the body
  std::optional<Rate> rate;           // allow rules: a bucket of its own
  std::string label;                  // "allow[1]", "deny[0]", "policy read-only"
  std::string text;                   // the rule as written, for messages
  SourcePos at;
};

struct Verdict {
  bool allowed = false;
  /// The rule that decided: the allow rule that let it through, the deny
  /// rule that matched, or the allow rule whose method and path matched but
  /// whose body condition did not. Null: no rule matched at all.
  const Rule* rule = nullptr;
  int allow_index = -1;  // index in `allow` when allowed
  std::string reason;    // a sentence for the 403 body; never holds header values
};

/// Deny rules first: the first that matches refuses. Then the first allow
/// rule that matches lets it through. Nothing matched: refused. A rule
/// matches when its method (if any), path glob, body-max and body pattern
/// all hold; a body pattern that cannot be decided (too complex) counts as
/// a match for deny and a mismatch for allow. A deny rule's glob matches
/// when it matches the path or any of its other readings; an allow rule's
/// must match the path itself (see RequestPath).
Verdict decide(const std::vector<Rule>& allow, const std::vector<Rule>& deny, std::string_view method,
               const RequestPath& path, std::string_view body);
/// The same for a path taken as already normalized, with no other reading,
/// matched case-sensitively.
Verdict decide(const std::vector<Rule>& allow, const std::vector<Rule>& deny, std::string_view method,
               std::string_view path, std::string_view body);

/// The rules a preset stands for: "read-only" is GET and HEAD on every
/// path; "any" is every method on every path. Empty for an unknown name.
std::vector<Rule> preset_rules(std::string_view preset);
inline const std::vector<std::string> kPresets = {"read-only", "any"};

}  // namespace hearth::proxy
