// The `${{ ... }}` expression language, read: the lexer, the recursive-descent
// parser, and the template splitter (the tree: expr_tree.h).
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

}  // namespace hearth::workflows::expr
