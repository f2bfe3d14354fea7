// The `${{ ... }}` expression language, evaluated: values, comparisons and
// the functions, over a parsed tree (expr_tree.h) and a JSON context.
#include "workflows/expr.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

#include "util/json_limits.h"
#include "workflows/suggest.h"
#include "workflows/expr_tree.h"

namespace hearth::workflows::expr {

namespace {

// ---------------------------------------------------------------- values

double to_number(const json& v) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (v.is_null()) return 0;
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return kNaN;  // arrays and objects
  std::string_view s = v.get_ref<const std::string&>();
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.empty()) return 0;
  if (scan_number(s) != s.size()) return kNaN;
  auto n = number_value(s);
  return n ? n->get<double>() : kNaN;
}

template <class A, class B>
std::partial_ordering compare_integers(A a, B b) {
  if (std::cmp_less(a, b)) return std::partial_ordering::less;
  return std::cmp_equal(a, b) ? std::partial_ordering::equivalent : std::partial_ordering::greater;
}

std::partial_ordering compare_numbers(const json& a, const json& b) {
  if (!a.is_number_integer() || !b.is_number_integer()) return a.get<double>() <=> b.get<double>();
  bool au = a.is_number_unsigned(), bu = b.is_number_unsigned();
  if (au && bu) return compare_integers(a.get<uint64_t>(), b.get<uint64_t>());
  if (au) return compare_integers(a.get<uint64_t>(), b.get<int64_t>());
  if (bu) return compare_integers(a.get<int64_t>(), b.get<uint64_t>());
  return compare_integers(a.get<int64_t>(), b.get<int64_t>());
}

enum class Type { null, boolean, number, string, composite };

Type type_of(const json& v) {
  if (v.is_null()) return Type::null;
  if (v.is_boolean()) return Type::boolean;
  if (v.is_number()) return Type::number;
  if (v.is_string()) return Type::string;
  return Type::composite;
}

/// How `a` orders against `b`. Values of one type compare directly; strings
/// byte by byte, so case matters (GitHub Actions ignores case; we do not, so
/// that `==` means the same thing here as in a shell test). Arrays and objects
/// are only equal to an equal value and unordered otherwise. Values of
/// different types are compared as numbers (see to_number), where NaN is
/// unordered against everything.
std::partial_ordering order(const json& a, const json& b) {
  Type type = type_of(a);
  if (type != type_of(b)) return to_number(a) <=> to_number(b);
  switch (type) {
    case Type::null: return std::partial_ordering::equivalent;
    case Type::boolean: return a.get<bool>() <=> b.get<bool>();
    case Type::number: return compare_numbers(a, b);
    case Type::string: return a.get_ref<const std::string&>() <=> b.get_ref<const std::string&>();
    case Type::composite: break;
  }
  return a == b ? std::partial_ordering::equivalent : std::partial_ordering::unordered;
}

/// Unordered (NaN, unequal arrays) makes every comparison false but `!=`.
bool compare(Node::Op op, const json& a, const json& b) {
  std::partial_ordering o = order(a, b);
  switch (op) {
    case Node::Op::eq: return o == 0;
    case Node::Op::ne: return !(o == 0);
    case Node::Op::lt: return o < 0;
    case Node::Op::le: return o <= 0;
    case Node::Op::gt: return o > 0;
    case Node::Op::ge: return o >= 0;
  }
  return false;
}

/// `v[key]`: an object's member for a string key, an array's element for a
/// number with an integral value in range; null otherwise.
const json& access(const json& v, const json& key) {
  if (v.is_object() && key.is_string()) {
    auto it = v.find(key.get_ref<const std::string&>());
    return it == v.end() ? null_json() : *it;
  }
  if (!v.is_array() || !key.is_number()) return null_json();
  double d = key.get<double>();
  if (!(d >= 0) || d != std::floor(d) || d >= static_cast<double>(v.size())) return null_json();
  return v[static_cast<size_t>(d)];
}

/// `.*`: an object's member values (in key order), an array's elements,
/// nothing for anything else.
void append_wildcard(const json& v, json& out) {
  if (!v.is_object() && !v.is_array()) return;
  for (const auto& e : v) out.push_back(e);
}

json parse_json_text(const std::string& text, size_t column) {
  if (auto deep = json_depth_error(text)) throw Failure{column, "fromJSON(): " + *deep};
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    size_t bracket = what.find("] ");
    throw Failure{column, "fromJSON(): not valid JSON: " + what.substr(bracket == std::string::npos ? 0 : bracket + 2)};
  }
}

// ---------------------------------------------------------------- evaluator

class Evaluator {
 public:
  Evaluator(const json& context, const StatusFunctions& status) : context_(context), status_(status) {}

  json eval(const Node& n) const {
    switch (n.kind) {
      case Node::Kind::literal: return n.value;
      case Node::Kind::context: return lookup(n.name);
      case Node::Kind::path: return eval_path(n);
      case Node::Kind::not_op: return !truthy(eval(*n.children[0]));
      case Node::Kind::and_op:
      case Node::Kind::or_op: return eval_logical(n);
      case Node::Kind::compare: return eval_compare(n);
      case Node::Kind::call: return eval_call(n);
    }
    return nullptr;
  }

 private:
  const json& lookup(const std::string& name) const {
    if (!context_.is_object()) return null_json();
    auto it = context_.find(name);
    return it == context_.end() ? null_json() : *it;
  }

  // `a && b` yields the first falsy operand, else the last; `a || b` the
  // first truthy operand, else the last. Later operands are not evaluated.
  json eval_logical(const Node& n) const {
    bool stop_when = n.kind == Node::Kind::or_op;
    for (size_t i = 0;; ++i) {
      json v = eval(*n.children[i]);
      if (truthy(v) == stop_when || i + 1 == n.children.size()) return v;
    }
  }

  // `a < b < c` compares (a < b) with c, left to right.
  json eval_compare(const Node& n) const {
    json left = eval(*n.children[0]);
    for (size_t i = 0; i < n.ops.size(); ++i) left = compare(n.ops[i], left, eval(*n.children[i + 1]));
    return left;
  }

  // Walks by reference into the context, copying only the final value. After
  // a `.*` the value is a list, and each later step applies to every element:
  // `.*` flattens, other steps drop elements whose result is null.
  json eval_path(const Node& n) const {
    const Node& base = *n.children[0];
    json owned;
    const json* cur = base.kind == Node::Kind::context ? &lookup(base.name) : &(owned = eval(base));
    bool filtered = false;
    for (const auto& a : n.accessors) {
      bool wildcard = a.kind == Node::Accessor::Kind::wildcard;
      json key = a.index ? eval(*a.index) : json();
      const json& k = a.index ? key : a.key;
      if (!filtered && !wildcard) {
        cur = &access(*cur, k);
        continue;
      }
      json list = json::array();
      if (!filtered) {
        append_wildcard(*cur, list);  // the first `.*`
      } else {
        for (const auto& e : *cur) {
          if (wildcard) append_wildcard(e, list);
          else if (const json& v = access(e, k); !v.is_null()) list.push_back(v);
        }
      }
      owned = std::move(list);
      cur = &owned;
      filtered = true;
    }
    return *cur;
  }

  json eval_call(const Node& n) const {
    std::vector<json> args;
    args.reserve(n.children.size());
    for (const auto& c : n.children) args.push_back(eval(*c));
    switch (n.function) {
      case Function::contains: return contains(args[0], args[1]);
      case Function::starts_with: return to_text(args[0]).starts_with(to_text(args[1]));
      case Function::ends_with: return to_text(args[0]).ends_with(to_text(args[1]));
      case Function::format: return format(n, args);
      case Function::join: return join(args);
      case Function::to_json: return dump_compact(args[0]);
      case Function::from_json: return parse_json_text(to_text(args[0]), n.column);
      case Function::success: return status_.success;
      case Function::failure: return status_.failure;
      case Function::always: return true;
      case Function::cancelled: return status_.cancelled;
    }
    return nullptr;
  }

  // An array contains an element equal (==) to the needle; anything else is
  // read as text (to_text) and searched for the needle's text, case-sensitively.
  static bool contains(const json& haystack, const json& needle) {
    if (haystack.is_array()) {
      return std::any_of(haystack.begin(), haystack.end(),
                         [&](const json& e) { return compare(Node::Op::eq, e, needle); });
    }
    return to_text(haystack).find(to_text(needle)) != std::string::npos;
  }

  static std::string format(const Node& n, const std::vector<json>& args) {
    std::string out;
    std::string err = expand_format(to_text(args[0]), args.size() - 1, args.data() + 1, &out);
    if (!err.empty()) throw Failure{n.column, "format(): " + err};
    return out;
  }

  // The elements' texts joined by the separator (default ","); a value that
  // is not an array reads as its own text.
  static std::string join(const std::vector<json>& args) {
    if (!args[0].is_array()) return to_text(args[0]);
    std::string sep = args.size() > 1 ? to_text(args[1]) : ",";
    std::string out;
    for (size_t i = 0; i < args[0].size(); ++i) out += (i ? sep : "") + to_text(args[0][i]);
    return out;
  }

  const json& context_;
  const StatusFunctions& status_;
};

}  // namespace

Result<json> Expression::evaluate(const json& context, const StatusFunctions& status) const {
  if (!root_) return Error{"internal error: evaluating an expression that was never parsed (this is a bug)"};
  try {
    return Evaluator(context, status).eval(*root_);
  } catch (const Failure& f) {
    return error_at(f.column, f.what);
  } catch (const std::exception& e) {
    return Error{"internal error evaluating '" + clip(text_) + "': " + e.what() + " (this is a bug)"};
  }
}

Result<std::string> Template::render(const json& context, const StatusFunctions& status) const {
  std::string out;
  for (const auto& p : parts) {
    out += p.literal;
    if (!p.expr) continue;
    auto value = p.expr->evaluate(context, status);
    if (!value) return Error{shift_column(value.message(), p.offset + 3)};
    out += to_text(*value);
  }
  return out;
}

bool truthy(const json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    return d != 0 && !std::isnan(d);
  }
  if (value.is_number()) return value != 0;
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  return true;
}

// Doubles with an integral value below 2^53 print as integers ("3", not
// "3.0"); other doubles in nlohmann's shortest round-trip form; NaN and
// infinities as JavaScript spells them.
std::string to_text(const json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) return std::to_string(static_cast<int64_t>(d));
  }
  return dump_compact(value);
}

}  // namespace hearth::workflows::expr
