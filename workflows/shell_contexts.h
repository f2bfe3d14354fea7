// Where bash evaluates the text of a value as arithmetic or as code.
//
// An interpolation is written into a `run` script as a quoted variable
// reference ("${HEARTH_EXPR_1}"), which keeps the value one word and never
// lets it become script text. Some places read a variable's *value* again as
// code: an arithmetic expression evaluates `a[$(cmd)]` inside a value and
// runs cmd; `eval`, `bash -c`, `trap` and `source` run their argument.
// Quoting the reference does not help there, so the shell lexer
// (shell_template.cpp) refuses an interpolation in any of these contexts:
//   - arithmetic it finds while lexing: $(( )), (( )), $[ ], ${a[ ]} and the
//     offset and length of ${s:offset:length} (see kArithmetic* below);
//   - arguments of a simple command, decided by evaluation_context() once the
//     command's words are known: [[ ]] and [ ]/test numeric comparisons, let,
//     declare/local/typeset/readonly with -i, name[...] subscripts, printf -v,
//     eval, bash/sh -c, trap, source and `.`.
// This is a check of the text, not a bash parser: a value that reaches such a
// context through another variable (n=${{ x }}; (( n ))), a nameref, ${!x},
// a quoted 'a[..]' argument (unset 'a[..]'), or a pipe or heredoc into a
// shell is not seen. docs/workflow-reference.md says so.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::workflows {

/// Why an interpolation is refused: the context, and what to write instead.
struct Evaluation {
  std::string context;  // "an arithmetic comparison in [[ ]] (-eq)"
  std::string advice;   // the safe alternative
};

/// Names of the arithmetic contexts the lexer tracks itself.
inline constexpr const char* kArithmeticExpansion = "an arithmetic expansion $(( )) or $[ ]";
inline constexpr const char* kArithmeticCommand = "an arithmetic command (( )) or for (( ))";
inline constexpr const char* kSubscriptExpansion = "an array subscript ${a[...]}";
inline constexpr const char* kSubstringOffset = "a substring offset or length ${s:offset:length}";

/// The refusal for an interpolation in the arithmetic context `context`.
Evaluation arithmetic_evaluation(const char* context);

/// For an interpolation inside word `index` of a simple command whose words
/// (raw source text, quotes included, assignments and the command name first)
/// are `words`, `at` bytes into that word: the context that evaluates it, or
/// nullopt when bash uses the value as a plain string there.
/// REQUIRES: index < words.size().
std::optional<Evaluation> evaluation_context(const std::vector<std::string_view>& words, size_t index, size_t at);

}  // namespace hearth::workflows
