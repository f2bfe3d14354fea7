// The workflow syntax of API proxies: the `[proxies.NAME]` tables, the
// `egress` list of `[sandbox]` and a step's `proxies = [...]`, read from a
// parsed toml++ document into proxy/definition.h's values. The loader calls
// these through ProxyReader (loader_proxies.h); tools and tests call them
// alone. Syntax: docs/proxies.md.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/definition.h"
#include "util/status.h"
#include "workflows/loader.h"
#include "workflows/tomlpp.h"

namespace hearth::workflows {

struct ProxyConfigResult {
  proxy::ProxyConfig config;
  std::vector<LoadError> errors;  // in file order
  bool ok() const { return errors.empty(); }
};

/// Reads `[proxies]` and `[sandbox] egress` of `doc` (the other keys of
/// `[sandbox]` are the loader's). Checks names, URLs, header names and
/// templates, presets, rule keys and values (methods, globs, sizes, PCRE2
/// patterns, rates) and egress pairs. Never throws.
ProxyConfigResult parse_proxy_config(const toml::table& doc);

/// `suggest(name, defined)` returns a hint for an undefined proxy name
/// (" (did you mean 'github'?)") or "" (then the defined names are listed).
using SuggestProxy = std::function<std::string(const std::string&, const std::vector<std::string>&)>;

/// A step's `proxies = [...]` (the node of that key): known names, once
/// each, and network = "proxies". `where` names the step in messages
/// ("step 'summarise'"). Returns the names in order; appends to `errors`.
std::vector<std::string> parse_step_proxies(const toml::node& value, const proxy::ProxyConfig& config,
                                            const std::string& where, std::vector<LoadError>& errors,
                                            const SuggestProxy& suggest = {});

/// Parses TOML `text` and reads it as parse_proxy_config. Errors read
/// "<path>:line:col: message", one per line. Never throws.
Result<proxy::ProxyConfig> parse_proxy_config_text(std::string_view text, const std::string& path);

}  // namespace hearth::workflows
