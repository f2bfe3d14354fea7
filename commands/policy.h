// Which invocations of a granted command are allowed.
//
// A command's policy is a list of `allow` and `deny` patterns (and/or a
// preset that supplies them). Patterns are matched against the argument
// vector the program would receive (argv[1..]), argument by argument — never
// against a joined string, so quoting cannot make one argument look like
// two. The rules (docs/commands.md has them for users):
//
//   - A pattern is split into tokens at spaces. A token in double quotes is
//     one literal token and may contain spaces ("--title \"a b\"").
//   - A token that is exactly `*` matches one or more whole arguments,
//     whatever they contain (options included).
//   - Any other token matches exactly one argument: literally, or as a glob
//     when it contains `*` (any run of characters within that one argument)
//     or `?` (one character). `\*`, `\?`, `\"` and `\\` are literal.
//   - A pattern matches when its tokens consume every argument; the empty
//     pattern "" matches the call with no arguments.
//   - Deny patterns are checked first: any match refuses. Then the first
//     allow pattern that matches allows. Nothing matching refuses.
//
// Presets are named sets of patterns (presets.cpp); a preset pattern may use
// the placeholder `{branch}`, replaced by the workspace's current branch
// when the decision is made.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hearth::commands {

struct PatternToken {
  enum Kind { literal, glob, rest } kind = literal;
  std::string text;  // literal text or glob (escapes resolved into `glob_literal` marks)
  std::vector<bool> escaped;  // per char of `text`, for globs: true where a wildcard char is literal
};

struct ArgPattern {
  std::string source;  // as written, for messages
  std::vector<PatternToken> tokens;
};

/// Parses one pattern; the error says what is wrong with `source`.
Result<ArgPattern> parse_pattern(std::string_view source);

/// Whether `args` (argv without the program name) matches `pattern`.
bool matches(const ArgPattern& pattern, const std::vector<std::string>& args);

/// Facts a decision may depend on (for preset placeholders).
struct DecisionContext {
  std::string branch;  // the workspace's current branch; empty when unknown (then {branch} never matches)
};

struct Policy {
  std::string command;          // the name the sandbox calls ("gh")
  std::vector<ArgPattern> allow;
  std::vector<ArgPattern> deny;
  std::vector<std::string> presets;  // names, for messages
};

/// Builds a policy from written patterns and preset names. Every bad
/// pattern or unknown preset is reported, each naming `where`.
Result<Policy> make_policy(const std::string& command, const std::vector<std::string>& allow,
                           const std::vector<std::string>& deny, const std::vector<std::string>& presets,
                           const std::string& where);

struct Decision {
  bool allowed = false;
  std::string rule;     // the pattern that decided ("deny: * --hostname *"); empty when none matched
  std::string message;  // for the caller inside the sandbox when refused
};

Decision decide(const Policy& policy, const std::vector<std::string>& args, const DecisionContext& context = {});

/// A preset's patterns, or null when there is no preset of that name.
struct Preset {
  std::string name;         // "gh:read-only"
  std::string command;      // "gh"
  std::string description;  // one line, for docs and messages
  std::vector<std::string> allow, deny;
};
const Preset* find_preset(std::string_view name);
const std::vector<Preset>& all_presets();

/// The argument vector as a shell would have to write it, for messages and
/// the journal: each argument quoted when it needs to be.
std::string quote_args(const std::vector<std::string>& args);

}  // namespace hearth::commands
