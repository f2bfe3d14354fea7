// The workflow syntax of API proxies: the `[proxies.NAME]` tables, the
// `egress` list of `[sandbox]` and a step's `proxies = [...]`, read from a
// parsed toml++ document into our own structs. Errors carry line and column
// for the loader to prefix with the file's path. Syntax: docs/proxies.md.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "proxy/definition.h"
#include "util/status.h"

namespace hearth::proxy {

struct ConfigError {
  SourcePos at;
  std::string message;  // without the "path:line:col: " prefix
};

struct ConfigResult {
  ProxyConfig config;
  std::vector<ConfigError> errors;  // in document order
  bool ok() const { return errors.empty(); }
};

/// Reads `[proxies]` and `[sandbox] egress` of `doc` (other keys of
/// `[sandbox]` are the loader's). Checks names, URLs, header names and
/// templates, presets, rule keys and values (methods, globs, sizes, PCRE2
/// patterns, rates) and egress pairs. Never throws.
ConfigResult parse_proxy_config(const toml::table& doc);

/// A step's `proxies = [...]` (the node of that key): known names, once
/// each, and network = "proxies". `where` names the step in messages
/// ("step 'summarise'"). Returns the names in order. `suggest(name,
/// defined)`, when given, returns a hint for an undefined name (" (did you
/// mean 'github'?)") or "" (then the defined names are listed).
using Suggest = std::function<std::string(const std::string&, const std::vector<std::string>&)>;
std::vector<std::string> parse_step_proxies(const toml::node& value, const ProxyConfig& config,
                                            const std::string& where, std::vector<ConfigError>& errors,
                                            const Suggest& suggest = {});

/// For tools and tests: parses TOML `text` and reads it as above. Errors
/// read "<path>:line:col: message", one per line.
Result<ProxyConfig> parse_proxy_config_text(std::string_view text, const std::string& path);

/// The headers of `def` with every `${{ secrets.NAME }}` replaced by
/// `secret(NAME)`. Fails when a secret is missing or its value holds a
/// line break or NUL (the message names the secret, never the value).
Result<std::vector<std::pair<std::string, std::string>>> render_headers(
    const ProxyDef& def, const std::function<std::optional<std::string>(const std::string&)>& secret);

/// The variable inside the sandbox that holds a proxy's URL:
/// "HEARTH_PROXY_" + the name upper-cased, '-' as '_'.
std::string env_name(std::string_view proxy_name);

}  // namespace hearth::proxy
