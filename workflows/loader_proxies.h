// Private to workflows/: the reader of the API proxies' syntax
// (docs/proxies.md) over TomlReader's getters. The loader holds one and adds
// the checks that need the rest of the file: `kind = "local"` cannot use
// proxies or egress, and a step's grant names a defined proxy.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/definition.h"
#include "workflows/proxies.h"
#include "workflows/toml_reader.h"
#include "workflows/tomlpp.h"
#include "workflows/workflow.h"

namespace hearth::workflows {

class ProxyReader {
 public:
  /// REQUIRES: `toml` outlives the reader; errors go there.
  explicit ProxyReader(TomlReader& toml) : toml_(toml) {}

  /// `[proxies.*]`, `[sandbox] network` and `egress` of `doc`.
  proxy::ProxyConfig read_config(const toml::table& doc);
  /// A step's `proxies = [...]` against `config`.
  std::vector<std::string> read_step_proxies(const toml::node& value, const proxy::ProxyConfig& config,
                                             const std::string& where, const SuggestProxy& suggest);

  /// For the loader: read_config into `wf`, refused under kind = "local".
  /// REQUIRES: wf.sandbox was read (kind and network).
  void read(const toml::table& doc, Workflow& wf);
  /// For the loader: a step's proxies against what read() found, with
  /// "did you mean".
  void read_step(const toml::node& value, Step& step, const std::string& where);

 private:
  std::optional<proxy::ProxyDef> read_proxy(const std::string& name, const toml::node& node);
  void read_proxies(const toml::node& node, proxy::ProxyConfig& cfg);
  void read_path_options(const toml::table& t, const std::string& where, proxy::PathOptions& o);
  void read_headers(const toml::table& t, const std::string& where, proxy::ProxyDef& def);
  void read_rules(const toml::array& a, const std::string& where, const std::string& kind,
                  std::vector<proxy::Rule>& out);
  proxy::Rule read_rule(const toml::table& t, const std::string& where, const std::string& kind);
  void read_methods(const toml::table& t, const std::string& where, proxy::Rule& r, std::vector<std::string>& parts);
  void read_egress(const toml::table& doc, proxy::ProxyConfig& cfg);

  TomlReader& toml_;
  proxy::ProxyConfig config_;  // what read() found, for read_step()
};

}  // namespace hearth::workflows
