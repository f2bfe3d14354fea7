// The `${{ ... }}` expression language: lexer, recursive-descent parser,
// evaluator, and the template splitter. Parsing and evaluation signal errors
// with a private exception (Failure) that never leaves this file; every public
// function turns it, and any nlohmann exception, into an Error.
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

namespace {

using NodePtr = std::unique_ptr<Node>;
using Function = Node::Function;

constexpr int kMaxDepth = 64;       // nesting of (), [], call arguments and '!'
constexpr size_t kVariadic = std::numeric_limits<size_t>::max();

/// Thrown only inside this file; public functions report "column N: what".
struct Failure {
  size_t column;
  std::string what;
};

Error error_at(size_t column, const std::string& what) {
  return Error{"column " + std::to_string(column) + ": " + what};
}

const json& null_json() {
  static const json kNull;
  return kNull;
}

std::string dump_compact(const json& v) {
  // Strings from expressions may hold invalid UTF-8; replace rather than throw.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Long text is cut in messages so a hostile input cannot make a huge error.
std::string clip(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 37)) + "...";
}

// ---------------------------------------------------------------- functions

struct FunctionInfo {
  Function id;
  std::string_view name;  // canonical spelling; calls match it ignoring case
  size_t min_args;
  size_t max_args;
};

constexpr FunctionInfo kFunctions[] = {
    {Function::contains, "contains", 2, 2},     {Function::starts_with, "startsWith", 2, 2},
    {Function::ends_with, "endsWith", 2, 2},    {Function::format, "format", 1, kVariadic},
    {Function::join, "join", 1, 2},             {Function::to_json, "toJSON", 1, 1},
    {Function::from_json, "fromJSON", 1, 1},    {Function::success, "success", 0, 0},
    {Function::failure, "failure", 0, 0},       {Function::always, "always", 0, 0},
    {Function::cancelled, "cancelled", 0, 0},
};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

const FunctionInfo& find_function(const std::string& name, size_t column) {
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

std::string arity_text(const FunctionInfo& f) {
  auto count = [](size_t n) { return n == 1 ? std::string("1 argument") : std::to_string(n) + " arguments"; };
  if (f.max_args == kVariadic) return "at least " + count(f.min_args);
  if (f.min_args == f.max_args) return f.min_args == 0 ? std::string("no arguments") : count(f.min_args);
  return std::to_string(f.min_args) + " or " + count(f.max_args);
}

/// Expands a format() string: `{N}` is the N-th argument after the format
/// string (0-based) read with to_text(); `{{` and `}}` are literal braces; any
/// other '{' or '}' is an error. With `args` null it only validates (used at
/// parse time when the format string is a literal). Returns "" or the error.
std::string expand_format(std::string_view fmt, size_t arg_count, const json* args, std::string* out) {
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

// ---------------------------------------------------------------- lexer

enum class Tok { end, ident, number, string, lparen, rparen, lbracket, rbracket, dot, comma, star, bang,
                 and_, or_, eq, ne, lt, le, gt, ge };

struct Token {
  Tok kind = Tok::end;
  size_t column = 0;      // 1-based
  std::string_view text;  // as written
  json value;             // number and string literals
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c) || c == '-'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Length of the number at the start of `s`, 0 if none. A number is
/// '-'? ( '0x' hexdigits | digits ('.' digits)? ([eE] [+-]? digits)? ).
size_t scan_number(std::string_view s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  auto digits = [&](bool (*pred)(char)) {
    size_t start = i;
    while (i < s.size() && pred(s[i])) ++i;
    return i > start;
  };
  if (s.substr(i, 2) == "0x" || s.substr(i, 2) == "0X") {
    i += 2;
    return digits(is_hex) ? i : 0;
  }
  if (!digits(is_digit)) return 0;
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    ++i;
    digits(is_digit);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t mark = i++;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits(is_digit)) i = mark;
  }
  return i;
}

/// The value of a whole number as scanned by scan_number(): an integer when
/// written without '.' or exponent and it fits in 64 bits, else a double.
/// Nullopt when out of range.
std::optional<json> number_value(std::string_view s) {
  bool negative = s[0] == '-';
  std::string_view body = s.substr(negative ? 1 : 0);
  const char* end = s.data() + s.size();
  if (body.size() > 2 && (body[1] == 'x' || body[1] == 'X')) {
    uint64_t u = 0;
    if (std::from_chars(body.data() + 2, end, u, 16).ec != std::errc{}) return std::nullopt;
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (u > kMax) return negative ? std::nullopt : std::optional<json>(json(u));
    return json(negative ? -static_cast<int64_t>(u) : static_cast<int64_t>(u));
  }
  if (body.find_first_of(".eE") == std::string_view::npos) {
    int64_t i = 0;
    if (std::from_chars(s.data(), end, i).ec == std::errc{}) return json(i);
  }
  double d = 0;
  if (std::from_chars(s.data(), end, d).ec != std::errc{}) return std::nullopt;
  return json(d);
}

size_t lex_number(std::string_view rest, Token& t) {
  size_t n = scan_number(rest);
  size_t bad = n;
  while (bad < rest.size() && (is_ident_char(rest[bad]) || rest[bad] == '.')) ++bad;
  if (bad != n) throw Failure{t.column, "invalid number '" + clip(rest.substr(0, bad)) + "'"};
  auto value = number_value(rest.substr(0, n));
  if (!value) throw Failure{t.column, "number '" + clip(rest.substr(0, n)) + "' is out of range"};
  t.kind = Tok::number;
  t.value = std::move(*value);
  return n;
}

// A string is single-quoted; '' inside it stands for one quote.
size_t lex_string(std::string_view rest, Token& t) {
  std::string value;
  for (size_t i = 1;;) {
    size_t quote = rest.find('\'', i);
    if (quote == std::string_view::npos) throw Failure{t.column, "unterminated string (missing closing ')"};
    value.append(rest.substr(i, quote - i));
    if (quote + 1 < rest.size() && rest[quote + 1] == '\'') {
      value += '\'';
      i = quote + 2;
      continue;
    }
    t.kind = Tok::string;
    t.value = std::move(value);
    return quote + 1;
  }
}

size_t lex_punct(std::string_view rest, Token& t) {
  static constexpr std::pair<std::string_view, Tok> kPuncts[] = {
      {"&&", Tok::and_}, {"||", Tok::or_},    {"==", Tok::eq},       {"!=", Tok::ne},
      {"<=", Tok::le},   {">=", Tok::ge},     {"<", Tok::lt},        {">", Tok::gt},
      {"!", Tok::bang},  {"(", Tok::lparen},  {")", Tok::rparen},    {"[", Tok::lbracket},
      {"]", Tok::rbracket}, {".", Tok::dot},  {",", Tok::comma},     {"*", Tok::star},
  };
  for (const auto& [text, kind] : kPuncts) {
    if (rest.starts_with(text)) {
      t.kind = kind;
      return text.size();
    }
  }
  switch (rest[0]) {
    case '"': throw Failure{t.column, "double-quoted strings are not allowed; use single quotes ('text')"};
    case '=': throw Failure{t.column, "unexpected '=' (use '==' to compare)"};
    case '&': throw Failure{t.column, "unexpected '&' (use '&&')"};
    case '|': throw Failure{t.column, "unexpected '|' (use '||')"};
    default: break;
  }
  auto c = static_cast<unsigned char>(rest[0]);
  if (c >= 0x20 && c < 0x7f) throw Failure{t.column, std::string("unexpected character '") + rest[0] + "'"};
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", c);
  throw Failure{t.column, std::string("unexpected byte ") + hex};
}

/// The tokens of `text`, ending with a Tok::end whose column is one past the end.
std::vector<Token> lex(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  for (;;) {
    while (i < text.size() && is_space(text[i])) ++i;
    Token t;
    t.column = i + 1;
    if (i == text.size()) {
      tokens.push_back(std::move(t));
      return tokens;
    }
    std::string_view rest = text.substr(i);
    size_t n = 0;
    if (is_ident_start(rest[0])) {
      while (n < rest.size() && is_ident_char(rest[n])) ++n;
      t.kind = Tok::ident;
    } else if (is_digit(rest[0]) || (rest[0] == '-' && rest.size() > 1 && is_digit(rest[1]))) {
      n = lex_number(rest, t);
    } else if (rest[0] == '\'') {
      n = lex_string(rest, t);
    } else {
      n = lex_punct(rest, t);
    }
    t.text = rest.substr(0, n);
    tokens.push_back(std::move(t));
    i += n;
  }
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::end: return "end of expression";
    case Tok::number: return "number " + clip(t.text);
    case Tok::string: return "string " + clip(t.text);
    default: return "'" + clip(t.text) + "'";
  }
}

// ---------------------------------------------------------------- parser

/// Counts one level of nesting for as long as it lives.
class Nest {
 public:
  Nest(int& depth, size_t column) : depth_(depth) {
    if (++depth_ > kMaxDepth) {
      throw Failure{column, "expression nests more than " + std::to_string(kMaxDepth) + " levels deep"};
    }
  }
  ~Nest() { --depth_; }
  Nest(const Nest&) = delete;
  Nest& operator=(const Nest&) = delete;

 private:
  int& depth_;
};

NodePtr make_node(Node::Kind kind, size_t column) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->column = column;
  return n;
}

std::optional<Node::Op> compare_op(Tok t) {
  switch (t) {
    case Tok::eq: return Node::Op::eq;
    case Tok::ne: return Node::Op::ne;
    case Tok::lt: return Node::Op::lt;
    case Tok::le: return Node::Op::le;
    case Tok::gt: return Node::Op::gt;
    case Tok::ge: return Node::Op::ge;
    default: return std::nullopt;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodePtr parse() {
    NodePtr root = parse_or();
    if (peek().kind != Tok::end) fail_expected("an operator or end of expression");
    return root;
  }

 private:
  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (t.kind != Tok::end) ++pos_;
    return t;
  }
  bool accept(Tok kind) {
    if (peek().kind != kind) return false;
    next();
    return true;
  }
  [[noreturn]] void fail_expected(const std::string& what) const {
    throw Failure{peek().column, "expected " + what + " but found " + describe(peek())};
  }
  void expect(Tok kind, const char* what) {
    if (!accept(kind)) fail_expected(what);
  }

  NodePtr parse_or() { return parse_chain(Tok::or_, Node::Kind::or_op, &Parser::parse_and); }
  NodePtr parse_and() { return parse_chain(Tok::and_, Node::Kind::and_op, &Parser::parse_compare); }

  NodePtr parse_chain(Tok op, Node::Kind kind, NodePtr (Parser::*operand)()) {
    NodePtr first = (this->*operand)();
    if (peek().kind != op) return first;
    NodePtr node = make_node(kind, first->column);
    node->children.push_back(std::move(first));
    while (accept(op)) node->children.push_back((this->*operand)());
    return node;
  }

  NodePtr parse_compare() {
    NodePtr first = parse_unary();
    if (!compare_op(peek().kind)) return first;
    NodePtr node = make_node(Node::Kind::compare, first->column);
    node->children.push_back(std::move(first));
    while (auto op = compare_op(peek().kind)) {
      next();
      node->ops.push_back(*op);
      node->children.push_back(parse_unary());
    }
    return node;
  }

  NodePtr parse_unary() {
    if (peek().kind != Tok::bang) return parse_postfix();
    size_t column = next().column;
    Nest nest(depth_, column);
    NodePtr node = make_node(Node::Kind::not_op, column);
    node->children.push_back(parse_unary());
    return node;
  }

  NodePtr parse_postfix() {
    NodePtr base = parse_primary();
    if (peek().kind != Tok::dot && peek().kind != Tok::lbracket) return base;
    NodePtr node = make_node(Node::Kind::path, base->column);
    node->children.push_back(std::move(base));
    for (;;) {
      Node::Accessor a;
      if (accept(Tok::dot)) {
        if (accept(Tok::star)) {
          a.kind = Node::Accessor::Kind::wildcard;
        } else if (peek().kind == Tok::ident) {
          a.key = std::string(next().text);  // keywords are fine as names: `a.true`
        } else {
          fail_expected("a property name or '*' after '.'");
        }
      } else if (peek().kind == Tok::lbracket) {
        Nest nest(depth_, next().column);
        a.kind = Node::Accessor::Kind::index;
        a.index = parse_or();
        expect(Tok::rbracket, "']'");
      } else {
        return node;
      }
      node->accessors.push_back(std::move(a));
    }
  }

  NodePtr parse_primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::number:
      case Tok::string: {
        NodePtr node = make_node(Node::Kind::literal, next().column);
        node->value = t.value;
        return node;
      }
      case Tok::ident: return parse_identifier(next());
      case Tok::lparen: {
        Nest nest(depth_, next().column);
        NodePtr inner = parse_or();
        expect(Tok::rparen, "')'");
        return inner;
      }
      default: fail_expected("a value");
    }
  }

  NodePtr parse_identifier(const Token& t) {
    if (peek().kind == Tok::lparen) return parse_call(t);
    NodePtr node = make_node(Node::Kind::literal, t.column);
    if (t.text == "null") return node;
    if (t.text == "true" || t.text == "false") {
      node->value = t.text == "true";
      return node;
    }
    node->kind = Node::Kind::context;
    node->name = std::string(t.text);
    return node;
  }

  NodePtr parse_call(const Token& name) {
    const FunctionInfo& f = find_function(std::string(name.text), name.column);
    Nest nest(depth_, next().column);  // the '('
    NodePtr node = make_node(Node::Kind::call, name.column);
    node->function = f.id;
    node->name = std::string(f.name);
    if (!accept(Tok::rparen)) {
      do {
        node->children.push_back(parse_or());
      } while (accept(Tok::comma));
      expect(Tok::rparen, "',' or ')'");
    }
    size_t given = node->children.size();
    if (given < f.min_args || given > f.max_args) {
      throw Failure{name.column, std::string(f.name) + "() takes " + arity_text(f) + " but was given " +
                                     std::to_string(given)};
    }
    check_literal_format(*node);
    return node;
  }

  // A literal format string is checked now, so the loader reports it.
  static void check_literal_format(const Node& call) {
    if (call.function != Function::format) return;
    const Node& fmt = *call.children[0];
    if (fmt.kind != Node::Kind::literal || !fmt.value.is_string()) return;
    std::string err = expand_format(fmt.value.get_ref<const std::string&>(), call.children.size() - 1, nullptr, nullptr);
    if (!err.empty()) throw Failure{fmt.column, "format(): " + err};
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

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

// ---------------------------------------------------------------- tree walks

template <class F>
void visit(const Node& n, const F& f) {
  f(n);
  for (const auto& c : n.children) visit(*c, f);
  for (const auto& a : n.accessors) {
    if (a.index) visit(*a.index, f);
  }
}

void add_unique(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

/// "column K: ..." (K within an expression that starts at byte `start` of a
/// template) becomes "column start+K: ...". Other messages pass unchanged.
std::string shift_column(const std::string& message, size_t start) {
  constexpr std::string_view kPrefix = "column ";
  if (!message.starts_with(kPrefix)) return message;
  size_t column = 0;
  const char* first = message.data() + kPrefix.size();
  auto [end, ec] = std::from_chars(first, message.data() + message.size(), column);
  if (ec != std::errc{}) return message;
  return "column " + std::to_string(start + column) + std::string(end, message.data() + message.size());
}

/// Position of the `}}` closing an interpolation whose text starts at `from`,
/// ignoring `}}` inside single-quoted strings; npos if there is none, and then
/// *open_quote is the position of a string left open (npos if none).
size_t find_close(std::string_view text, size_t from, size_t* open_quote) {
  size_t quote = std::string_view::npos;
  for (size_t i = from; i < text.size(); ++i) {
    if (text[i] == '\'') {
      quote = quote == std::string_view::npos ? i : std::string_view::npos;  // '' toggles twice
    } else if (quote == std::string_view::npos && text.substr(i, 2) == "}}") {
      return i;
    }
  }
  *open_quote = quote;
  return std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------- public API

Result<Expression> Expression::parse(std::string_view text) {
  try {
    std::vector<Token> tokens = lex(text);
    if (tokens.front().kind == Tok::end) return error_at(1, "empty expression");
    Expression e;
    e.root_ = Parser(std::move(tokens)).parse();
    e.text_ = std::string(text);
    return e;
  } catch (const Failure& f) {
    return error_at(f.column, f.what);
  } catch (const std::exception& e) {
    return Error{"internal error parsing '" + clip(text) + "': " + e.what() + " (this is a bug)"};
  }
}

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

std::vector<std::string> Expression::step_refs() const {
  std::vector<std::string> ids;
  if (!root_) return ids;
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::path) return;
    const Node& base = *n.children[0];
    if (base.kind != Node::Kind::context || base.name != "steps") return;
    const Node::Accessor& a = n.accessors[0];
    const json* key = a.kind == Node::Accessor::Kind::member ? &a.key : nullptr;
    if (a.index && a.index->kind == Node::Kind::literal) key = &a.index->value;
    if (key && key->is_string()) add_unique(ids, key->get<std::string>());
  });
  return ids;
}

std::vector<std::pair<std::string, std::string>> Expression::step_properties() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!root_) return out;
  auto literal_key = [](const Node::Accessor& a) -> const json* {
    if (a.kind == Node::Accessor::Kind::member) return &a.key;
    if (a.index && a.index->kind == Node::Kind::literal) return &a.index->value;
    return nullptr;
  };
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::path || n.accessors.size() < 2) return;
    const Node& base = *n.children[0];
    if (base.kind != Node::Kind::context || base.name != "steps") return;
    const json* id = literal_key(n.accessors[0]);
    const json* prop = literal_key(n.accessors[1]);
    if (!id || !prop || !id->is_string() || !prop->is_string()) return;
    std::pair<std::string, std::string> p{id->get<std::string>(), prop->get<std::string>()};
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  });
  return out;
}

std::vector<std::string> Expression::context_refs() const {
  std::vector<std::string> names;
  if (!root_) return names;
  visit(*root_, [&](const Node& n) {
    if (n.kind == Node::Kind::context) add_unique(names, n.name);
  });
  return names;
}

bool Expression::uses_status_function() const {
  bool uses = false;
  if (!root_) return uses;
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::call) return;
    Function f = n.function;
    uses = uses || f == Function::success || f == Function::failure || f == Function::always ||
           f == Function::cancelled;
  });
  return uses;
}

// The trailing literal part (if the text does not end with `}}`) has a null
// expr and offset text.size(). An empty text has no parts.
Result<Template> Template::parse(std::string_view text) {
  Template t;
  size_t pos = 0;
  for (size_t open; (open = text.find("${{", pos)) != std::string_view::npos;) {
    size_t open_quote = std::string_view::npos;
    size_t close = find_close(text, open + 3, &open_quote);
    if (close == std::string_view::npos) {
      std::string why = "'${{' is never closed by '}}'";
      if (open_quote != std::string_view::npos) {
        why += " (the string at column " + std::to_string(open_quote + 1) + " is never closed)";
      }
      return error_at(open + 1, why);
    }
    auto parsed = Expression::parse(text.substr(open + 3, close - open - 3));
    if (!parsed) return Error{shift_column(parsed.message(), open + 3)};
    t.parts.push_back(Part{std::string(text.substr(pos, open - pos)),
                           std::make_shared<Expression>(std::move(parsed).value()), open});
    pos = close + 2;
  }
  if (pos < text.size()) t.parts.push_back(Part{std::string(text.substr(pos)), nullptr, text.size()});
  return t;
}

bool Template::is_literal() const {
  return std::none_of(parts.begin(), parts.end(), [](const Part& p) { return p.expr != nullptr; });
}

bool Template::is_single_expression() const {
  auto blank = [](const std::string& s) { return std::all_of(s.begin(), s.end(), is_space); };
  if (parts.empty() || parts.size() > 2 || !parts[0].expr || !blank(parts[0].literal)) return false;
  return parts.size() == 1 || (!parts[1].expr && blank(parts[1].literal));
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
