// A request path (after the first byte, whose low bits pick the proxy's
// path options) through the API proxy's normalizer. Beyond "no crash": an
// accepted path is made only of what may stand raw in a path and upper-case
// escapes of reserved bytes, holds nothing the options refuse, is its own
// normalization, and neither it nor any other reading of it has a dot or
// empty segment; `/**` matches it.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "proxy/policy.h"

using namespace hearth::proxy;

namespace {

bool hex_upper(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

bool unreserved(unsigned char c) { return std::isalnum(c) || std::strchr("-._~", c) != nullptr; }

// No '.'/'..' segment, no empty segment but a final one.
bool clean_segments(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  size_t start = 1;
  while (true) {
    size_t slash = p.find('/', start);
    auto seg = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == ".." || (seg.empty() && slash != std::string_view::npos)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

void check(const std::string& p, const PathOptions& o) {
  if (!clean_segments(p)) std::abort();
  for (size_t i = 0; i < p.size(); ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c == '%') {
      if (i + 2 >= p.size() || !hex_upper(p[i + 1]) || !hex_upper(p[i + 2])) std::abort();
      int b = std::stoi(p.substr(i + 1, 2), nullptr, 16);
      if (unreserved(static_cast<unsigned char>(b)) || b < 0x20 || b == 0x7f || b == '\\') std::abort();
      if ((b == '/' && !o.allow_encoded_slash) || (b == ';' && !o.allow_path_params)) std::abort();
      i += 2;
    } else if (c == ';') {
      if (!o.allow_path_params) std::abort();
    } else if (!unreserved(c) && !std::strchr("!$&'()*+,=:@/", c)) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  PathOptions o;
  o.case_insensitive = data[0] & 1;
  o.allow_encoded_slash = data[0] & 2;
  o.allow_path_params = data[0] & 4;
  std::string raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto r = normalize_path(raw, o);
  if (!r) return 0;
  check(r->path, o);
  for (auto& reading : r->readings)
    if (!clean_segments(reading) || reading == r->path) std::abort();
  auto again = normalize_path(r->path, o);
  if (!again || again->path != r->path || again->readings != r->readings) std::abort();
  if (!glob_match("/**", r->path, o.case_insensitive)) std::abort();
  // Without '*', a path read as a glob matches exactly itself.
  if (r->path.find('*') == std::string::npos && !glob_match(r->path, r->path)) std::abort();
  return 0;
}
