// The proxy definitions' own checks and rendering: no TOML here, the loader
// (workflows/loader_proxies.cpp) walks the file and calls these per value.
#include "proxy/definition.h"

#include <http_parser.h>

#include <algorithm>
#include <cctype>

#include "http/token.h"

namespace hearth::proxy {

namespace {

const std::vector<std::string> kReservedHeaders = {"host",    "content-length", "transfer-encoding", "connection",
                                                   "keep-alive", "upgrade",     "te",                "trailer",
                                                   "expect",  "proxy-authorization", "proxy-connection"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One `${{ ... }}` of a header value.
struct Placeholder {
  size_t begin = 0;                  // of "${{"
  size_t end = std::string::npos;    // past "}}"; npos when it is not closed
  std::string inner;                 // between the braces, blanks trimmed
};

// The first placeholder of `v` at or after `from`, or nullopt.
std::optional<Placeholder> next_placeholder(const std::string& v, size_t from) {
  size_t at = v.find("${{", from);
  if (at == std::string::npos) return std::nullopt;
  Placeholder p;
  p.begin = at;
  size_t close = v.find("}}", at + 3);
  if (close == std::string::npos) return p;
  p.end = close + 2;
  p.inner = v.substr(at + 3, close - at - 3);
  p.inner.erase(0, p.inner.find_first_not_of(" \t"));
  p.inner.erase(p.inner.find_last_not_of(" \t") + 1);
  return p;
}

bool valid_secret_name(std::string_view name) {
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
         std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool has_line_break(std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

}  // namespace

std::vector<std::string> ProxyDef::secret_names() const {
  std::vector<std::string> out;
  for (auto& h : headers)
    for (auto& s : h.secrets)
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  return out;
}

std::string EgressTarget::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const ProxyDef* ProxyConfig::find(std::string_view name) const {
  for (auto& p : proxies)
    if (p.name == name) return &p;
  return nullptr;
}

bool valid_proxy_name(std::string_view n) {
  return !n.empty() && std::isalpha(static_cast<unsigned char>(n[0])) &&
         std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

std::string env_name(std::string_view proxy_name) {
  std::string out = "HEARTH_PROXY_";
  for (char c : proxy_name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return http::is_tchar(static_cast<unsigned char>(c)); });
}

bool reserved_header(std::string_view name) {
  return std::find(kReservedHeaders.begin(), kReservedHeaders.end(), lower(name)) != kReservedHeaders.end();
}

std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

Result<std::string> check_upstream(const std::string& url) {
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(url.data(), url.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
      !(u.field_set & (1 << UF_HOST)))
    return Error{"not an absolute URL (like \"https://api.github.com\"): " + in_quotes(url)};
  std::string scheme = lower(url.substr(u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len));
  if (scheme != "https" && scheme != "http") return Error{"the scheme must be https (or http), not '" + scheme + "'"};
  if (u.field_set & ((1 << UF_QUERY) | (1 << UF_FRAGMENT)))
    return Error{"the URL has no query or fragment; requests append their own path and query"};
  if (u.field_set & (1 << UF_USERINFO)) return Error{"the URL holds no credentials; put them in headers, from secrets"};
  std::string out = url;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

Status scan_header_template(HeaderTemplate& h) {
  if (has_line_break(h.value)) return Error{"a header value cannot hold a line break"};
  for (auto p = next_placeholder(h.value, 0); p; p = next_placeholder(h.value, p->end)) {
    if (p->end == std::string::npos) return Error{"'${{' is not closed with '}}'"};
    std::string name = p->inner.rfind("secrets.", 0) == 0 ? p->inner.substr(8) : "";
    if (!valid_secret_name(name))
      return Error{"only ${{ secrets.NAME }} can be interpolated into proxy headers, not '${{ " + p->inner + " }}'"};
    if (std::find(h.secrets.begin(), h.secrets.end(), name) == h.secrets.end()) h.secrets.push_back(name);
  }
  return {};
}

Result<EgressTarget> parse_egress(const std::string& s) {
  auto bad = [&](const std::string& why) {
    return Error{in_quotes(s) + " is not a host:port pair (like \"registry.npmjs.org:443\")" + why};
  };
  if (s.find_first_of("*/@") != std::string::npos) return bad("; wildcards, paths and user names are not supported");
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(s.data(), s.size(), 1, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
      !(u.field_set & (1 << UF_PORT)))
    return bad("");
  if (u.port == 0) return bad(": the port must be 1-65535");
  EgressTarget t;
  t.host = lower(s.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len));
  t.port = u.port;
  return t;
}

Result<std::vector<std::pair<std::string, std::string>>> render_headers(
    const ProxyDef& def, const std::function<std::optional<std::string>(const std::string&)>& secret) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& h : def.headers) {
    std::string value;
    size_t from = 0;
    for (auto p = next_placeholder(h.value, 0); p; p = next_placeholder(h.value, from)) {
      if (p->end == std::string::npos || p->inner.rfind("secrets.", 0) != 0)
        return Error{"the header '" + h.name + "' of proxy '" + def.name +
                     "' holds an unchecked placeholder (a bug: the loader checks them)"};
      std::string name = p->inner.substr(8);
      auto s = secret(name);
      std::string where = "the secret " + name + " (header '" + h.name + "' of proxy '" + def.name + "')";
      if (!s) return Error{where + " is not set"};
      if (has_line_break(*s)) return Error{where + " holds a line break or NUL and cannot go into a header"};
      value += h.value.substr(from, p->begin - from) + *s;
      from = p->end;
    }
    value += h.value.substr(from);
    out.emplace_back(h.name, std::move(value));
  }
  return out;
}

}  // namespace hearth::proxy
