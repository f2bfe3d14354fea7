#include "ci/actions_output.h"

#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace hearth::ci {

std::string random_delimiter() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // RAND_bytes fails only without an entropy source; urandom is the fallback.
    std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(b), sizeof b);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static const char* hex = "0123456789abcdef";
  std::string out = "ghadelimiter_";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

Result<std::string> format_file_command(std::string_view name, std::string_view value, std::string_view delimiter) {
  std::string d(delimiter);
  if (name.find(delimiter) != std::string_view::npos)
    return Error{"Unexpected input: name should not contain the delimiter \"" + d + "\""};
  if (value.find(delimiter) != std::string_view::npos)
    return Error{"Unexpected input: value should not contain the delimiter \"" + d + "\""};
  std::string out;
  out.reserve(name.size() + value.size() + 2 * d.size() + 4);
  out.append(name).append("<<").append(d).append("\n").append(value).append("\n").append(d).append("\n");
  return out;
}

Status append_file_commands(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string text;
  for (auto& [name, value] : entries) {
    // A collision with 122 random bits does not happen by chance; a hostile
    // value cannot know the delimiter. Drawing again covers both anyway.
    for (;;) {
      auto entry = format_file_command(name, value, random_delimiter());
      if (entry) {
        text += *entry;
        break;
      }
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::app);
  if (!out) return Error{path + ": cannot open for appending: " + std::strerror(errno)};
  out << text;
  out.flush();
  if (!out) return Error{path + ": cannot write: " + std::strerror(errno)};
  return {};
}

}  // namespace hearth::ci
