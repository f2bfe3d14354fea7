// The rules behind evaluation_context(): which arguments of which commands
// bash evaluates. Each rule was checked against bash 5.2 with the value
// a[$(echo X$((6*7))Y 1>&2)], which prints X42Y where bash evaluates it.
#include "workflows/shell_contexts.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace hearth::workflows {
namespace {

const char* const kNumberAdvice =
    "declare the input with type = \"integer\" in [inputs] (checked before the run starts), or copy the value into "
    "a variable and check it first: n=${{ ... }}; [[ $n =~ ^-?[0-9]+$ ]] || exit 1";
const char* const kCodeAdvice =
    "pass the value as data instead: an argument (bash -c 'echo \"$1\"' _ ${{ ... }}) or an environment variable "
    "(env = { X = \"${{ ... }}\" }, then \"$X\")";

Evaluation arithmetic(std::string context) {
  return {std::move(context) + ": bash evaluates the value there as an arithmetic expression, and a[$(cmd)] in a "
                               "value runs cmd, quoted or not",
          kNumberAdvice};
}

Evaluation code(std::string context) {
  return {std::move(context) + ": bash runs the value there as shell code", kCodeAdvice};
}

Evaluation code_file(std::string context) {
  return {std::move(context) + ": bash runs the file the value names as shell code",
          std::string("name a fixed file; ") + kCodeAdvice};
}

// The word as bash would compare it to a name: quotes and backslashes removed.
std::string unquoted(std::string_view w) {
  std::string out;
  for (char c : w)
    if (c != '\'' && c != '"' && c != '\\') out += c;
  return out;
}

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Length of the bare name a word starts with (0 if none).
size_t name_length(std::string_view w) {
  if (w.empty() || !is_name_start(w[0])) return 0;
  size_t n = 1;
  while (n < w.size() && is_name_char(w[n])) ++n;
  return n;
}

// `name=`, `name+=` or `name[...]=`, unquoted: an assignment.
bool is_assignment(std::string_view w) {
  size_t n = name_length(w);
  if (n == 0) return false;
  if (n < w.size() && w[n] == '[') {
    size_t close = w.find("]", n);
    if (close == std::string_view::npos) return false;
    n = close + 1;
  }
  return w.substr(n).starts_with("=") || w.substr(n).starts_with("+=");
}

bool is_option(std::string_view w) { return w.size() > 1 && (w[0] == '-' || w[0] == '+') && w != "--"; }

bool one_of(const std::string& w, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return w == n; });
}

// Index of the command name: after assignments and wrappers that run their
// arguments as a command (`command`, `exec`, `env`, `nohup`, `sudo`, `time`).
size_t command_index(const std::vector<std::string_view>& words) {
  size_t c = 0;
  while (c < words.size()) {
    std::string w = unquoted(words[c]);
    if (is_assignment(words[c])) {
      ++c;
    } else if (one_of(w, {"command", "builtin", "exec", "env", "nohup", "sudo", "time"})) {
      ++c;
      while (c < words.size() && is_option(words[c])) ++c;
    } else {
      break;
    }
  }
  return c;
}

// The first operand after `from` (options and `--` skipped), or npos.
size_t first_operand(const std::vector<std::string_view>& words, size_t from) {
  for (size_t j = from; j < words.size(); ++j) {
    if (words[j] == "--") return j + 1 < words.size() ? j + 1 : std::string_view::npos;
    if (!is_option(words[j])) return j;
  }
  return std::string_view::npos;
}

// Whether byte `at` of `w` lies inside the subscript of `name[...]` that `w`
// starts with.
bool in_subscript(std::string_view w, size_t at) {
  size_t open = name_length(w);
  if (open == 0 || open >= w.size() || w[open] != '[' || at <= open) return false;
  int depth = 0;
  for (size_t k = open; k < w.size(); ++k) {
    if (w[k] == '[') ++depth;
    if (w[k] == ']' && --depth == 0) return at < k;
  }
  return true;  // no closing ]: everything after [ is the subscript
}

std::optional<Evaluation> test_operand(const std::vector<std::string_view>& words, size_t c, size_t i) {
  static const std::array<const char*, 6> ops = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge"};
  for (size_t j : {i - 1, i + 1}) {
    if (j <= c || j >= words.size()) continue;
    std::string w = unquoted(words[j]);
    if (std::find(ops.begin(), ops.end(), w) == ops.end()) continue;
    std::string cmd = unquoted(words[c]);
    if (cmd == "[[") return arithmetic("an arithmetic comparison [[ ... " + w + " ... ]]");
    // bash 5's own [ and test accept only a plain integer here, but the same
    // comparison moved into [[ ]] evaluates it: refused alike.
    return arithmetic("a numeric comparison " + cmd + " ... " + w + " ... (the same in [[ ]] evaluates the value)");
  }
  return std::nullopt;
}

std::optional<Evaluation> declare_flags(const std::vector<std::string_view>& words, size_t c, size_t i) {
  std::string cmd = unquoted(words[c]);
  for (size_t j = c + 1; j < i; ++j) {
    if (!is_option(words[j]) || words[j][0] != '-') continue;
    std::string flags = unquoted(words[j]);
    if (flags.find('i') != std::string::npos) return arithmetic("'" + cmd + " " + flags + "' (an integer variable)");
    if (flags.find('n') != std::string::npos)
      return arithmetic("'" + cmd + " " + flags + "' (a nameref: its target name is evaluated, subscript included)");
  }
  return std::nullopt;
}

// bash/sh ... -c CODE: the operand after the options, when -c is among them;
// without -c it is a script to run.
std::optional<Evaluation> shell_code(const std::vector<std::string_view>& words, size_t c, size_t i) {
  bool dash_c = false;
  size_t j = c + 1;
  for (; j < words.size(); ++j) {
    std::string w = unquoted(words[j]);
    if (w == "--") {
      ++j;
      break;
    }
    if (!is_option(words[j])) break;
    if (w[0] == '-' && w.size() > 1 && w[1] != '-' && w.find('c') != std::string::npos) dash_c = true;
    if (w == "-o" || w == "+o" || w == "-O" || w == "+O") ++j;  // takes an argument
  }
  if (i != j) return std::nullopt;
  std::string shell = unquoted(words[c]);
  if (dash_c) return code("the command string of '" + shell + " -c'");
  return code_file("the script '" + shell + "' runs");
}

}  // namespace

Evaluation arithmetic_evaluation(const char* context) { return arithmetic(context); }

std::optional<Evaluation> evaluation_context(const std::vector<std::string_view>& words, size_t index, size_t at) {
  size_t c = command_index(words);
  std::string_view word = words[index];
  bool sets_names = false;  // a command whose arguments name variables
  std::string cmd;
  if (c < words.size()) {
    cmd = unquoted(words[c]);
    sets_names = one_of(cmd, {"declare", "local", "typeset", "readonly", "export", "read", "unset", "mapfile",
                              "readarray", "printf", "test", "[", "[[", "wait"});
  }
  if ((index < c || is_assignment(word) || sets_names) && in_subscript(word, at))
    return arithmetic("an array subscript " + std::string(word.substr(0, name_length(word))) + "[...]");
  if (index <= c || c >= words.size()) return std::nullopt;
  std::string base = cmd.substr(cmd.find_last_of('/') == std::string::npos ? 0 : cmd.find_last_of('/') + 1);
  if (cmd == "[[" || cmd == "[" || cmd == "test") return test_operand(words, c, index);
  if (cmd == "let") return arithmetic("'let'");
  if (one_of(cmd, {"declare", "local", "typeset", "readonly", "export"})) return declare_flags(words, c, index);
  if (cmd == "printf" && unquoted(words[index - 1]) == "-v")
    return arithmetic("the variable name of 'printf -v' (its subscript is evaluated)");
  if ((cmd == "mapfile" || cmd == "readarray") && unquoted(words[index - 1]) == "-C")
    return code("the callback of '" + cmd + " -C'");
  if (cmd == "eval") return code("an argument of 'eval'");
  if (one_of(base, {"bash", "sh", "dash", "zsh", "ksh", "mksh", "ash"})) return shell_code(words, c, index);
  if ((cmd == "trap" || cmd == "source" || cmd == ".") && index == first_operand(words, c + 1)) {
    if (cmd == "trap") return code("the action of 'trap'");
    return code_file("the file '" + cmd + "' reads");
  }
  return std::nullopt;
}

}  // namespace hearth::workflows
