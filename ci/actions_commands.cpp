#include "ci/actions_commands.h"

#include <algorithm>
#include <set>

#include "commands/redact.h"

namespace hearth::ci {

namespace {

std::string escape(std::string_view s, bool property) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '%': out += "%25"; break;
      case '\r': out += "%0D"; break;
      case '\n': out += "%0A"; break;
      case ':': out += property ? "%3A" : ":"; break;
      case ',': out += property ? "%2C" : ","; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_data(std::string_view s) { return escape(s, false); }
std::string escape_property(std::string_view s) { return escape(s, true); }

std::string format_command(std::string_view name, const Properties& properties, std::string_view message) {
  std::string out = "::";
  out += name;
  bool first = true;
  for (auto& [k, v] : properties) {
    if (v.empty()) continue;
    out += first ? " " : ",";
    first = false;
    out += k + "=" + escape_property(v);
  }
  out += "::";
  out += escape_data(message);
  out += "\n";
  return out;
}

std::string format_annotation(std::string_view level, const Annotation& a, std::string_view message) {
  auto num = [](int n) { return n > 0 ? std::to_string(n) : std::string(); };
  return format_command(level,
                        {{"title", a.title},
                         {"file", a.file},
                         {"line", num(a.line)},
                         {"endLine", num(a.end_line)},
                         {"col", num(a.col)},
                         {"endColumn", num(a.end_column)}},
                        message);
}

std::vector<std::string> secret_forms(std::string_view value) {
  if (value.empty()) return {};
  return commands::encoded_forms(std::string(value));
}

std::string mask_commands(const std::vector<std::string>& values) {
  std::set<std::string> seen;
  std::string out;
  for (auto& v : values)
    for (auto& form : secret_forms(v))
      if (seen.insert(form).second) out += format_command("add-mask", {}, form);
  return out;
}

std::string redact(std::string text, const std::vector<std::string>& values) {
  // The engine's redactor for what it can hide; a value too short for it
  // (the runner masks those too) is replaced as is.
  commands::SecretSet set;
  std::vector<std::string> short_ones;
  for (auto& v : values)
    if (!v.empty() && !set.add("mask", v).ok()) short_ones.push_back(v);
  text = set.redact(text);
  for (auto& f : short_ones)
    for (size_t at = text.find(f); at != std::string::npos; at = text.find(f, at + 3)) text.replace(at, f.size(), "***");
  return text;
}

}  // namespace hearth::ci
