// Private to workflows/: the parsed tree of a `${{ }}` expression, shared by
// the parser (expr_parse.cpp), the evaluator (expr_eval.cpp) and the walks
// over a parsed tree (expr.cpp); the function table and the helpers both
// sides use. Parsing and evaluation signal errors with Failure, which never
// leaves those files: every public function turns it, and any nlohmann
// exception, into an Error.
#pragma once

#include <algorithm>
#include <charconv>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/expr.h"
#include "workflows/suggest.h"

namespace hearth::workflows::expr {

using nlohmann::json;

/// One node of the parsed tree. Operands of ||, && and comparison chains are
/// kept flat (not one node per operator), so a long `a || b || c ...` does not
/// make the tree deep; only (), [], call arguments and '!' nest, and those are
/// limited to kMaxDepth levels. That bounds every recursion over the tree.
struct Node {
  enum class Kind { literal, context, path, not_op, and_op, or_op, compare, call };
  enum class Op { eq, ne, lt, le, gt, ge };
  enum class Function {
    contains, starts_with, ends_with, format, join, to_json, from_json,
    success, failure, always, cancelled
  };
  /// One step of a path: `.name`, `.*` or `[expr]`.
  struct Accessor {
    enum class Kind { member, wildcard, index } kind = Kind::member;
    json key;                           // member: the name, as a JSON string
    std::unique_ptr<const Node> index;  // index: the key expression
  };

  Kind kind = Kind::literal;
  size_t column = 0;                                  // 1-based, for errors
  json value;                                         // literal
  std::string name;                                   // context: identifier; call: canonical name
  Function function = Function::always;               // call
  std::vector<std::unique_ptr<const Node>> children;  // operands; call arguments; path: [0] is the base
  std::vector<Accessor> accessors;                    // path
  std::vector<Op> ops;                                // compare: ops[i] joins children[i] and [i+1]
};


using NodePtr = std::unique_ptr<Node>;
using Function = Node::Function;

inline constexpr int kMaxDepth = 64;       // nesting of (), [], call arguments and '!'
inline constexpr size_t kVariadic = std::numeric_limits<size_t>::max();

/// Thrown only inside this file; public functions report "column N: what".
struct Failure {
  size_t column;
  std::string what;
};

inline Error error_at(size_t column, const std::string& what) {
  return Error{"column " + std::to_string(column) + ": " + what};
}

inline const json& null_json() {
  static const json kNull;
  return kNull;
}

inline std::string dump_compact(const json& v) {
  // Strings from expressions may hold invalid UTF-8; replace rather than throw.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// Length of the number at the start of `s`, 0 if none (expr_parse.cpp).
/// A number is '-'? ( '0x' hexdigits | digits ('.' digits)? ([eE] [+-]? digits)? ).
size_t scan_number(std::string_view s);
/// The value of a number scanned by scan_number(): an integer when written
/// without '.' or exponent and it fits in 64 bits, else a double; nullopt
/// when out of range (expr_parse.cpp).
std::optional<json> number_value(std::string_view s);

/// Whitespace between tokens, as the lexer skips it.
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Long text is cut in messages so a hostile input cannot make a huge error.
inline std::string clip(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 37)) + "...";
}

// ---------------------------------------------------------------- functions

struct FunctionInfo {
  Function id;
  std::string_view name;  // canonical spelling; calls match it ignoring case
  size_t min_args;
  size_t max_args;
};

inline constexpr FunctionInfo kFunctions[] = {
    {Function::contains, "contains", 2, 2},     {Function::starts_with, "startsWith", 2, 2},
    {Function::ends_with, "endsWith", 2, 2},    {Function::format, "format", 1, kVariadic},
    {Function::join, "join", 1, 2},             {Function::to_json, "toJSON", 1, 1},
    {Function::from_json, "fromJSON", 1, 1},    {Function::success, "success", 0, 0},
    {Function::failure, "failure", 0, 0},       {Function::always, "always", 0, 0},
    {Function::cancelled, "cancelled", 0, 0},
};

inline bool equal_ignoring_case(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

inline const FunctionInfo& find_function(const std::string& name, size_t column) {
  for (const auto& f : kFunctions) {
    if (equal_ignoring_case(f.name, name)) return f;
  }
  std::vector<std::string> names;
  for (const auto& f : kFunctions) names.emplace_back(f.name);
  std::string hint = did_you_mean(name, names);
  if (hint.empty()) {
    hint = "; known functions are";
    for (size_t i = 0; i < names.size(); ++i) hint += (i ? ", " : " ") + names[i];
  }
  throw Failure{column, "unknown function '" + clip(name) + "'" + hint};
}

inline std::string arity_text(const FunctionInfo& f) {
  auto count = [](size_t n) { return n == 1 ? std::string("1 argument") : std::to_string(n) + " arguments"; };
  if (f.max_args == kVariadic) return "at least " + count(f.min_args);
  if (f.min_args == f.max_args) return f.min_args == 0 ? std::string("no arguments") : count(f.min_args);
  return std::to_string(f.min_args) + " or " + count(f.max_args);
}

/// Expands a format() string: `{N}` is the N-th argument after the format
/// string (0-based) read with to_text(); `{{` and `}}` are literal braces; any
/// other '{' or '}' is an error. With `args` null it only validates (used at
/// parse time when the format string is a literal). Returns "" or the error.
inline std::string expand_format(std::string_view fmt, size_t arg_count, const json* args, std::string* out) {
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if ((c == '{' || c == '}') && i + 1 < fmt.size() && fmt[i + 1] == c) {
      if (out) *out += c;
      ++i;
    } else if (c == '}') {
      return "unmatched '}' at position " + std::to_string(i + 1) + " of the format string (write '}}' for a brace)";
    } else if (c == '{') {
      size_t j = i + 1;
      size_t index = 0;
      for (; j < fmt.size() && fmt[j] >= '0' && fmt[j] <= '9'; ++j) {
        index = std::min<size_t>(index * 10 + static_cast<size_t>(fmt[j] - '0'), 1000000);
      }
      if (j == i + 1 || j == fmt.size() || fmt[j] != '}') {
        return "'{' at position " + std::to_string(i + 1) +
               " of the format string starts no placeholder like {0} (write '{{' for a brace)";
      }
      if (index >= arg_count) {
        return "placeholder {" + std::to_string(index) + "} is out of range: " + std::to_string(arg_count) +
               (arg_count == 1 ? " argument follows" : " arguments follow") + " the format string";
      }
      if (out && args) *out += to_text(args[index]);
      i = j;
    } else if (out) {
      *out += c;
    }
  }
  return {};
}

/// "column K: ..." (K within an expression that starts at byte `start` of a
/// template) becomes "column start+K: ...". Other messages pass unchanged.
inline std::string shift_column(const std::string& message, size_t start) {
  constexpr std::string_view kPrefix = "column ";
  if (!message.starts_with(kPrefix)) return message;
  size_t column = 0;
  const char* first = message.data() + kPrefix.size();
  auto [end, ec] = std::from_chars(first, message.data() + message.size(), column);
  if (ec != std::errc{}) return message;
  return "column " + std::to_string(start + column) + std::string(end, message.data() + message.size());
}

}  // namespace hearth::workflows::expr
