// What the workflow file says about API proxies, as plain values: the
// `[proxies.NAME]` tables, `[sandbox] egress` and the parts of a step's grant;
// the checks of single values the syntax needs (names, URLs, header
// templates, host:port pairs); rendering headers with secrets. No TOML: the
// loader reads the file (workflows/proxies.h) and calls these. Syntax:
// docs/proxies.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/policy.h"
#include "util/status.h"

namespace hearth::proxy {

/// A header Hearth adds to every request it forwards, as written: the value
/// may hold `${{ secrets.NAME }}`, rendered by the engine (render_headers).
struct HeaderTemplate {
  std::string name;                  // as written ("Authorization")
  std::string value;                 // as written ("Bearer ${{ secrets.GH_TOKEN }}")
  std::vector<std::string> secrets;  // names it references, in order, once each
  SourcePos at;
};

struct ProxyDef {
  std::string name;      // "github"
  std::string upstream;  // "https://api.github.com", no trailing '/'
  std::vector<HeaderTemplate> headers;
  std::string preset;    // "", "read-only" or "any" (`policy = `)
  /// The step's rules: `allow` then the preset's rules, and `deny`.
  std::vector<Rule> allow, deny;
  std::optional<Rate> rate;  // the whole proxy, per step attempt
  /// `max-requests`: requests forwarded per step attempt; past it every
  /// request is refused (403). Unset: no budget.
  std::optional<uint64_t> max_requests;
  /// `case-insensitive-paths`, `allow-encoded-slash`, `allow-path-params`.
  PathOptions paths;
  SourcePos at;
  /// Every secret the headers reference, once each, in order.
  std::vector<std::string> secret_names() const;
};

/// One `host:port` of `[sandbox] egress`.
struct EgressTarget {
  std::string host;  // lower case; an IPv6 address without brackets
  uint16_t port = 0;
  SourcePos at;
  std::string text() const;  // "host:port", "[v6]:port"
};

struct ProxyConfig {
  std::vector<ProxyDef> proxies;      // in file order
  std::vector<EgressTarget> egress;
  std::string network;                // [sandbox] network as written ("" when absent)
  const ProxyDef* find(std::string_view name) const;
};

// ---- single values, as the loader checks them ----

/// A proxy's name: a letter, then letters, digits, '-' and '_'.
bool valid_proxy_name(std::string_view name);

/// The variable inside the sandbox that holds a proxy's URL:
/// "HEARTH_PROXY_" + the name upper-cased, '-' as '_'.
std::string env_name(std::string_view proxy_name);

/// Whether `s` is an RFC 9110 token (a header name, a method).
bool is_token(std::string_view s);

/// Whether the header `name` (any case) describes the connection or the
/// message framing: the proxy sets those itself, a template may not.
bool reserved_header(std::string_view name);

/// `upstream = URL`: an absolute http(s) URL without query, fragment or
/// credentials; returned without its trailing '/'.
Result<std::string> check_upstream(const std::string& url);

/// Finds the `${{ secrets.NAME }}` in `h.value` and fills `h.secrets`;
/// nothing else may be interpolated there, and no line break.
Status scan_header_template(HeaderTemplate& h);

/// One `host:port` of `[sandbox] egress` ("[v6]:port" for IPv6); no
/// wildcards, paths or user names. `at` is left for the caller.
Result<EgressTarget> parse_egress(const std::string& text);

/// `text` in double quotes, with '"' and '\\' escaped: for messages.
std::string in_quotes(std::string_view text);

// ---- at run time ----

/// The headers of `def` with every `${{ secrets.NAME }}` replaced by
/// `secret(NAME)`. Fails when a secret is missing or its value holds a
/// line break or NUL (the message names the secret, never the value).
Result<std::vector<std::pair<std::string, std::string>>> render_headers(
    const ProxyDef& def, const std::function<std::optional<std::string>(const std::string&)>& secret);

}  // namespace hearth::proxy
