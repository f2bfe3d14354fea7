#include "http/url.h"

namespace hearth::http {

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void percent_escape(std::string& out, unsigned char c, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  out += '%';
  out += hex[c >> 4];
  out += hex[c & 15];
}

std::string percent_encode(std::string_view value, bool upper) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (unreserved(c)) out += static_cast<char>(c);
    else percent_escape(out, c, upper);
  }
  return out;
}

std::optional<std::string> form_decode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '+') {
      out += ' ';
    } else if (value[i] == '%') {
      if (i + 2 >= value.size()) return std::nullopt;
      int hi = hex_value(value[i + 1]), lo = hex_value(value[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += value[i];
    }
  }
  return out;
}

}  // namespace hearth::http
