// Limits as people write them: sizes ("512M", "1G") and counts. No libuv:
// workflows/ parses [sandbox] limits with these too.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hearth::sandbox {

/// A byte size: a whole number with an optional unit K, M, G or T (powers
/// of 1024; "KiB"/"KB"/"k" spellings accepted) or B. At least 1 MiB, at most 1 TiB.
inline Result<uint64_t> parse_size(std::string_view text) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (n > (uint64_t(1) << 40)) return Error{"size '" + std::string(text) + "' is too large"};
    n = n * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return Error{"size '" + std::string(text) + "' must start with a number (like 512M or 2G)"};
  std::string unit(text.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mult = uint64_t(1) << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mult = uint64_t(1) << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mult = uint64_t(1) << 30;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mult = uint64_t(1) << 40;
  else return Error{"size '" + std::string(text) + "' has an unknown unit '" + std::string(text.substr(i)) + "' (use K, M, G or T)"};
  uint64_t bytes = n * mult;
  if (bytes < (uint64_t(1) << 20)) return Error{"size '" + std::string(text) + "' is below the 1M minimum"};
  if (bytes > (uint64_t(1) << 40)) return Error{"size '" + std::string(text) + "' is above the 1T maximum"};
  return bytes;
}

}  // namespace hearth::sandbox
