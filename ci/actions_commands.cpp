#include "ci/actions_commands.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

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

std::string base64(std::string_view s) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += abc[(v >> k) & 63];
  }
  if (size_t rest = s.size() - i; rest > 0) {
    uint32_t v = uint8_t(s[i]) << 16;
    if (rest == 2) v |= uint8_t(s[i + 1]) << 8;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += rest == 2 ? abc[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// RFC 3986: everything but unreserved characters is percent-encoded.
std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
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
  std::vector<std::string> out;
  if (value.empty()) return out;
  std::string json = nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json = json.substr(1, json.size() - 2);  // without the quotes
  for (std::string form : {std::string(value), base64(value), url_encode(value), json})
    if (std::find(out.begin(), out.end(), form) == out.end()) out.push_back(std::move(form));
  return out;
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
  std::vector<std::string> forms;
  for (auto& v : values)
    for (auto& f : secret_forms(v)) forms.push_back(std::move(f));
  std::sort(forms.begin(), forms.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  for (auto& f : forms) {
    for (size_t at = text.find(f); at != std::string::npos; at = text.find(f, at + 3)) text.replace(at, f.size(), "***");
  }
  return text;
}

}  // namespace hearth::ci
