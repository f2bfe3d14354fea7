#include "commands/policy.h"

#include <algorithm>

#include "util/wildcard.h"

namespace hearth::commands {

namespace {

// Glob over one argument: '*' any run, '?' one char, unless escaped.
bool glob_match(const PatternToken& t, std::string_view s) {
  WildcardOptions o;
  o.question_mark = true;
  o.escaped = &t.escaped;
  return wildcard_match(t.text, s, o);
}

bool token_matches(const PatternToken& t, const std::string& arg) {
  return t.kind == PatternToken::literal ? t.text == arg : glob_match(t, arg);
}

std::string escape_placeholder_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\' || c == '*' || c == '?' || c == ' ') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Result<ArgPattern> parse_pattern(std::string_view source) {
  ArgPattern out;
  out.source = std::string(source);
  size_t i = 0;
  auto fail = [&](const std::string& why) { return Error{"pattern \"" + out.source + "\": " + why}; };
  while (i < source.size()) {
    if (source[i] == ' ') {
      ++i;
      continue;
    }
    PatternToken t;
    bool quoted = false, any_wild = false;
    if (source[i] == '"') {
      quoted = true;
      ++i;
    }
    bool closed = !quoted;
    while (i < source.size()) {
      char c = source[i];
      if (quoted && c == '"') {
        closed = true;
        ++i;
        break;
      }
      if (!quoted && c == ' ') break;
      if (!quoted && c == '"') return fail("a '\"' inside an unquoted token: quote the whole token or write \\\"");
      if (c == '\\') {
        if (i + 1 >= source.size()) return fail("it ends with a lone '\\'");
        t.text += source[i + 1];
        t.escaped.push_back(true);
        i += 2;
        continue;
      }
      bool wild = !quoted && (c == '*' || c == '?');
      any_wild = any_wild || wild;
      t.text += c;
      t.escaped.push_back(!wild);
      ++i;
    }
    if (!closed) return fail("a '\"' is not closed");
    if (!quoted && t.text == "*" && !t.escaped[0]) t.kind = PatternToken::rest;
    else if (any_wild) t.kind = PatternToken::glob;
    out.tokens.push_back(std::move(t));
  }
  return out;  // no tokens: matches the call without arguments
}

bool matches(const ArgPattern& pattern, const std::vector<std::string>& args) {
  const auto& tokens = pattern.tokens;
  size_t nt = tokens.size(), na = args.size();
  // ok[t][a]: tokens[t..] match args[a..]. Filled from the end.
  std::vector<std::vector<char>> ok(nt + 1, std::vector<char>(na + 1, 0));
  ok[nt][na] = 1;
  for (size_t t = nt; t-- > 0;) {
    for (size_t a = na + 1; a-- > 0;) {
      if (tokens[t].kind == PatternToken::rest) {
        // one or more arguments: args[a] then either stop or keep swallowing
        ok[t][a] = a < na && (ok[t + 1][a + 1] || ok[t][a + 1]);
      } else {
        ok[t][a] = a < na && token_matches(tokens[t], args[a]) && ok[t + 1][a + 1];
      }
    }
  }
  return ok[0][0];
}

Result<Policy> make_policy(const std::string& command, const std::vector<std::string>& allow,
                           const std::vector<std::string>& deny, const std::vector<std::string>& presets,
                           const std::string& where) {
  Policy p;
  p.command = command;
  std::string errors;
  auto add = [&](const std::vector<std::string>& sources, std::vector<ArgPattern>& into, const char* list) {
    for (auto& s : sources) {
      auto parsed = parse_pattern(s);
      if (!parsed) errors += (errors.empty() ? "" : "\n") + where + ": " + list + ": " + parsed.message();
      else into.push_back(std::move(*parsed));
    }
  };
  for (auto& name : presets) {
    const Preset* preset = find_preset(name);
    if (!preset) {
      std::string known;
      for (auto& pr : all_presets()) known += (known.empty() ? "" : ", ") + pr.name;
      errors += (errors.empty() ? "" : "\n") + where + ": unknown preset '" + name + "' (presets: " + known + ")";
      continue;
    }
    if (preset->command != command && !command.empty())
      errors += (errors.empty() ? "" : "\n") + where + ": preset '" + name + "' is for '" + preset->command +
                "', not '" + command + "'";
    add(preset->allow, p.allow, "allow");
    add(preset->deny, p.deny, "deny");
    p.presets.push_back(name);
  }
  add(allow, p.allow, "allow");
  add(deny, p.deny, "deny");
  if (!errors.empty()) return Error{errors};
  return p;
}

namespace {

// The pattern with {branch} filled in, or nullopt when it has the
// placeholder and the branch is unknown.
std::optional<ArgPattern> resolved(const ArgPattern& p, const DecisionContext& ctx) {
  if (p.source.find("{branch}") == std::string::npos) return p;
  if (ctx.branch.empty()) return std::nullopt;
  std::string s = p.source;
  for (size_t at; (at = s.find("{branch}")) != std::string::npos;) s.replace(at, 8, escape_placeholder_value(ctx.branch));
  auto parsed = parse_pattern(s);
  if (!parsed) return std::nullopt;
  return *parsed;
}

}  // namespace

Decision decide(const Policy& policy, const std::vector<std::string>& args, const DecisionContext& context) {
  std::string call = policy.command + (args.empty() ? "" : " " + quote_args(args));
  for (auto& d : policy.deny) {
    auto p = resolved(d, context);
    if (p && matches(*p, args))
      return {false, "deny: " + d.source,
              "hearth: '" + call + "' is refused by the deny pattern \"" + d.source + "\" of command '" + policy.command + "'"};
  }
  for (auto& a : policy.allow) {
    auto p = resolved(a, context);
    if (p && matches(*p, args)) return {true, "allow: " + a.source, ""};
  }
  std::string msg = "hearth: '" + call + "' is not granted: no allow pattern of command '" + policy.command + "' matches";
  if (policy.allow.empty()) msg += " (it has none)";
  else {
    msg += ". Allowed:";
    for (auto& a : policy.allow) msg += "\n  " + policy.command + " " + a.source;
  }
  msg += "\nTo allow it, add a matching pattern to [commands." + policy.command + "] allow in the workflow.";
  return {false, "", msg};
}

std::string quote_args(const std::vector<std::string>& args) {
  std::string out;
  for (auto& a : args) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](unsigned char c) {
      return std::isalnum(c) || std::string_view("-_./:=@,+%").find(static_cast<char>(c)) != std::string_view::npos;
    });
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace hearth::commands
