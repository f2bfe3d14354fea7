// What the workflow file says about API proxies, as plain values: the
// `[proxies.NAME]` tables, `[sandbox] egress` and the parts of a step's grant.
// No toml++ here (config.h reads these from a document), so the loader's
// Workflow can hold them without every includer parsing toml++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/policy.h"

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

}  // namespace hearth::proxy
