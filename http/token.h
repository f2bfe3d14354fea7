// RFC 9110 tokens (§5.6.2): header field names, methods. Header-only, so
// that the workflow loader's proxy syntax can use it without linking http/.
#pragma once

#include <string_view>

namespace hearth::http {

/// Whether `c` may stand in a token.
inline bool is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos);
}

}  // namespace hearth::http
