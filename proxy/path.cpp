#include "proxy/path.h"

#include <algorithm>
#include <cstring>

#include "http/url.h"

namespace hearth::proxy {

namespace {

// What else may stand raw in a path (RFC 3986 pchar and '/'); ';' is
// decided separately. Anything else is escaped.
bool raw_in_path(unsigned char c) { return http::unreserved(c) || (c != 0 && std::strchr("!$&'()*+,=:@/", c) != nullptr); }

// Why an upstream would resolve or collapse a segment of `path`, or "".
const char* segment_problem(std::string_view path) {
  size_t start = 1;
  while (true) {
    size_t slash = path.find('/', start);
    auto seg = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == "..") return "a '.' or '..' segment";
    if (seg.empty() && slash != std::string_view::npos) return "an empty segment ('//')";
    if (slash == std::string_view::npos) return "";
    start = slash + 1;
  }
}

std::string slashes_decoded(std::string_view p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p.compare(i, 3, "%2F") == 0) {
      out += '/';
      i += 2;
    } else {
      out += p[i];
    }
  }
  return out;
}

// Each segment cut at its first ';' (or "%3B"), as servers that support
// path parameters do before routing.
std::string params_removed(std::string_view p) {
  std::string out;
  bool in_params = false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '/') in_params = false;
    else if (p[i] == ';' || p.compare(i, 3, "%3B") == 0) in_params = true;
    if (!in_params) out += p[i];
  }
  return out;
}

// The escape at raw[i] ('%' there), decoded into `out` or refused.
Status decode_escape(std::string_view raw, size_t i, const PathOptions& o, std::string& out) {
  int hi = i + 2 < raw.size() ? http::hex_value(raw[i + 1]) : -1;
  int lo = i + 2 < raw.size() ? http::hex_value(raw[i + 2]) : -1;
  if (hi < 0 || lo < 0) return Error{"the path has a malformed percent-escape ('%' not followed by two hex digits)"};
  auto b = static_cast<unsigned char>(hi * 16 + lo);
  std::string code;
  http::percent_escape(code, b);
  if (http::unreserved(b)) {
    out += static_cast<char>(b);
    return {};
  }
  if (b < 0x20 || b == 0x7f) return Error{"the path has an encoded control character (" + code + ")"};
  if (b == '\\') return Error{"the path has an encoded backslash (%5C), which some servers read as '/'"};
  if (b == '/' && !o.allow_encoded_slash)
    return Error{"the path has an encoded slash (%2F), which servers read either as '/' or as part of a name; "
                 "a proxy whose API needs it sets allow-encoded-slash = true"};
  if (b == ';' && !o.allow_path_params)
    return Error{"the path has an encoded ';' (%3B), which some servers read as the start of path parameters; "
                 "a proxy whose API needs it sets allow-path-params = true"};
  http::percent_escape(out, b);
  return {};
}

}  // namespace

Result<RequestPath> normalize_path(std::string_view raw, const PathOptions& options) {
  if (raw.empty() || raw[0] != '/')
    return Error{"the request target must be a path starting with '/' (origin-form), not '" +
                 std::string(raw.substr(0, 64)) + "'"};
  RequestPath rp;
  rp.fold_case = options.case_insensitive;
  std::string& out = rp.path;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '%') {
      if (auto s = decode_escape(raw, i, options, out); !s.ok()) return Error{s.message()};
      i += 2;
    } else if (c == '\\') {
      return Error{"the path has a backslash, which some servers read as '/'"};
    } else if (c < 0x20 || c == 0x7f) {
      return Error{"the path has a control character"};
    } else if (c == ';') {
      if (!options.allow_path_params)
        return Error{"the path has path parameters (';'), which some servers drop before routing "
                     "('/secret;x' read as '/secret'); a proxy whose API needs them sets allow-path-params = true"};
      out += ';';
    } else if (raw_in_path(c)) {
      out += static_cast<char>(c);
    } else {
      http::percent_escape(out, c);
    }
  }
  if (const char* why = segment_problem(out); *why) return Error{std::string("the path has ") + why};
  // Other readings: only what the opt-ins let through can be read otherwise.
  bool has_slash = options.allow_encoded_slash && out.find("%2F") != std::string::npos;
  bool has_params = options.allow_path_params && (out.find(';') != std::string::npos || out.find("%3B") != std::string::npos);
  if (!has_slash && !has_params) return rp;
  std::string slash = slashes_decoded(out), params = params_removed(out);
  for (const std::string& r : {slash, params, params_removed(slash), slashes_decoded(params)}) {
    if (r == out || std::find(rp.readings.begin(), rp.readings.end(), r) != rp.readings.end()) continue;
    if (const char* why = segment_problem(r); *why)
      return Error{"read as some servers do ('%2F' as '/', ';…' dropped), the path has " + std::string(why)};
    rp.readings.push_back(r);
  }
  return rp;
}

}  // namespace hearth::proxy
