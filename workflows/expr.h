// The `${{ ... }}` expression language of workflow files.
//
// Grammar (precedence low to high):
//   expr    := or
//   or      := and ('||' and)*
//   and     := not_eq ('&&' not_eq)*
//   cmp     := unary (('=='|'!='|'<'|'<='|'>'|'>=') unary)*
//   unary   := '!' unary | postfix
//   postfix := primary ('.' IDENT | '.' '*' | '[' expr ']')*
//   primary := literal | IDENT | IDENT '(' args ')' | '(' expr ')'
//   literal := null | true | false | number | 'string' ('' escapes a quote)
// Identifiers may contain letters, digits, '_' and '-' (step ids use '-').
//
// Values are JSON (nlohmann::json). Semantics are documented in
// docs/workflow-reference.md; the parser has no I/O and knows nothing of runs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace hearth::workflows::expr {

struct Node;  // private AST

/// What an expression may read besides its JSON context: the status
/// functions, answered by the engine for the step being decided.
struct StatusFunctions {
  bool success = true;    // success(): every step this one needs (transitively) succeeded
  bool failure = false;   // failure(): some step this one needs (transitively) failed
  bool cancelled = false; // cancelled(): the run is being cancelled
};

/// A parsed expression. Immutable and cheap to copy (shares its tree).
class Expression {
 public:
  /// Parses `text` (the part between `${{` and `}}`, or a bare `if`).
  /// The error message is "column N: what was expected, what was found",
  /// with N 1-based within `text`; unknown functions and wrong argument
  /// counts are parse errors.
  static Result<Expression> parse(std::string_view text);

  /// Evaluates against `context`, an object whose members are the named
  /// contexts (`inputs`, `env`, `steps`, `run`, ...). Reading a missing
  /// member yields null, never an error. Errors (fromJSON of bad text, a
  /// format() placeholder out of range) name the function and the cause.
  Result<nlohmann::json> evaluate(const nlohmann::json& context,
                                  const StatusFunctions& status = {}) const;

  /// The step ids this expression reads through `steps.<id>` (or
  /// `steps['id']` with a literal key), in order of first appearance.
  std::vector<std::string> step_refs() const;
  /// The properties it reads of steps named by a literal key:
  /// `steps.build.outputs.x` gives {"build", "outputs"}; `steps.build` alone
  /// and `steps.*.status` give nothing. In order of first appearance.
  std::vector<std::pair<std::string, std::string>> step_properties() const;
  /// The top-level context names it reads (`inputs`, `steps`, ...).
  std::vector<std::string> context_refs() const;
  /// True if it calls success(), failure(), always() or cancelled().
  bool uses_status_function() const;

  const std::string& text() const { return text_; }

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
};

/// A string that may hold `${{ expr }}` interpolations.
struct Template {
  struct Part {
    std::string literal;                // text before `expr` (may be empty)
    std::shared_ptr<Expression> expr;   // null for the trailing literal
    size_t offset = 0;                  // byte offset of `${{` in the source string
  };
  std::vector<Part> parts;

  /// Splits `text` into literals and parsed expressions. An unterminated
  /// `${{` or a bad expression is an error "column N: ..." where N is the
  /// 1-based byte column within `text`.
  static Result<Template> parse(std::string_view text);

  bool is_literal() const;
  /// True when the whole string is exactly one `${{ expr }}` (ignoring
  /// surrounding whitespace): its value keeps its JSON type.
  bool is_single_expression() const;

  /// Evaluates every expression and joins the parts with to_text().
  Result<std::string> render(const nlohmann::json& context,
                             const StatusFunctions& status = {}) const;
};

/// Truthiness: false, 0, -0, NaN, "", and null are false; everything else
/// (including empty arrays and objects) is true.
bool truthy(const nlohmann::json& value);

/// How a value reads when interpolated into a string: strings as they are,
/// null as "", booleans as true/false, integers without a decimal point,
/// arrays and objects as compact JSON.
std::string to_text(const nlohmann::json& value);

}  // namespace hearth::workflows::expr
