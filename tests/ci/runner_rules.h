// How the GitHub Actions runner reads what a step wrote, following its
// documented rules (and its own tests, in tests/data/github-actions):
// `::command k=v,...::data` lines on stdout, and the NAME=VALUE /
// NAME<<DELIMITER file-command format of $GITHUB_OUTPUT. The tests check
// these readers against the runner's cases first, then read hearth's output
// with them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hearth::testing::runner {

struct Command {
  std::string command;
  std::map<std::string, std::string> properties;
  std::string data;
};

inline std::string unescape(std::string s, bool property) {
  std::vector<std::pair<std::string, std::string>> map = {{"%0D", "\r"}, {"%0A", "\n"}};
  if (property) {
    map.push_back({"%3A", ":"});
    map.push_back({"%2C", ","});
  }
  map.push_back({"%25", "%"});  // last: unescape once only
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool hit = false;
    for (auto& [from, to] : map) {
      if (s.compare(i, from.size(), from) == 0) {
        out += to;
        i += from.size();
        hit = true;
        break;
      }
    }
    if (!hit) out += s[i++];
  }
  return out;
}

/// One stdout line as the runner reads it; nullopt when it is not a command.
inline std::optional<Command> parse_command(std::string line) {
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos || line.compare(start, 2, "::") != 0) return std::nullopt;
  line = line.substr(start + 2);
  size_t end = line.find("::");
  if (end == std::string::npos) return std::nullopt;
  Command c;
  std::string head = line.substr(0, end);
  c.data = unescape(line.substr(end + 2), false);
  size_t space = head.find(' ');
  c.command = head.substr(0, space);
  if (space != std::string::npos) {
    std::string props = head.substr(space + 1);
    size_t at = 0;
    while (at <= props.size()) {
      size_t comma = props.find(',', at);
      std::string kv = props.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      size_t eq = kv.find('=');
      if (eq != std::string::npos && eq + 1 < kv.size()) c.properties[kv.substr(0, eq)] = unescape(kv.substr(eq + 1), true);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  return c;
}

/// Every command in a whole stdout, honouring ::stop-commands::TOKEN ... ::TOKEN::.
inline std::vector<Command> commands_in(const std::string& out) {
  std::vector<Command> found;
  std::string stopped;  // the token while commands are off
  size_t at = 0;
  while (at < out.size()) {
    size_t nl = out.find('\n', at);
    std::string line = out.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? out.size() : nl + 1;
    auto c = parse_command(line);
    if (!c) continue;
    if (!stopped.empty()) {
      if (c->command == stopped) stopped.clear();
      continue;
    }
    if (c->command == "stop-commands") stopped = c->data;
    else found.push_back(*c);
  }
  return found;
}

/// A file command file ($GITHUB_OUTPUT, $GITHUB_ENV) as the runner reads it:
/// NAME=VALUE lines and NAME<<DELIMITER blocks; empty lines skipped; a
/// leading UTF-8 BOM ignored. On a format error returns nullopt and sets *error.
inline std::optional<std::map<std::string, std::string>> parse_file_commands(std::string text, std::string* error) {
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  std::map<std::string, std::string> out;
  size_t at = 0;
  // The next line and whether a newline ended it.
  auto next_line = [&](std::string& line, bool& had_newline) {
    if (at >= text.size()) return false;
    size_t nl = text.find('\n', at);
    had_newline = nl != std::string::npos;
    line = text.substr(at, had_newline ? nl - at : std::string::npos);
    at = had_newline ? nl + 1 : text.size();
    return true;
  };
  std::string line;
  bool nl = false;
  while (next_line(line, nl)) {
    if (line.empty()) continue;
    size_t eq = line.find('='), heredoc = line.find("<<");
    if (eq != std::string::npos && (heredoc == std::string::npos || eq < heredoc)) {
      out[line.substr(0, eq)] = line.substr(eq + 1);
      continue;
    }
    if (heredoc == std::string::npos) {
      *error = "Invalid format '" + line + "'";
      return std::nullopt;
    }
    std::string name = line.substr(0, heredoc), delimiter = line.substr(heredoc + 2), value, l;
    bool first = true;
    for (;;) {
      if (!next_line(l, nl)) {
        *error = "Invalid value. Matching delimiter not found '" + delimiter + "'";
        return std::nullopt;
      }
      if (l == delimiter) break;
      if (!nl) {
        *error = "Invalid value. EOF marker missing new line.";
        return std::nullopt;
      }
      value += (first ? "" : "\n") + l;
      first = false;
    }
    out[name] = value;
  }
  return out;
}

}  // namespace hearth::testing::runner
