// The loader's part for API proxies: the syntax is proxy/config.h's; the
// checks against the rest of the workflow are here.
#include "workflows/loader_proxies.h"

#include "workflows/suggest.h"

namespace hearth::workflows {

namespace {

Location location_of(const toml::node& n) {
  return {static_cast<int>(n.source().begin.line), static_cast<int>(n.source().begin.column)};
}

constexpr const char* kLocalRefused =
    " under kind = \"local\": its ports would be the host's own loopback, open to every local user; "
    "use kind = \"namespace\"";

}  // namespace

const proxy::ProxyDef* Workflow::proxy(std::string_view name) const {
  for (auto& p : proxies)
    if (p.name == name) return &p;
  return nullptr;
}

void ProxyReader::report(const std::vector<proxy::ConfigError>& errors) {
  for (auto& e : errors) errors_.emplace_back(Location{e.at.line, e.at.column}, e.message);
}

void ProxyReader::read(const toml::table& doc, Workflow& wf) {
  auto result = proxy::parse_proxy_config(doc);
  report(result.errors);
  config_ = std::move(result.config);
  wf.proxies = config_.proxies;
  wf.sandbox.egress = config_.egress;
  // Egress and a step's proxies need network = "proxies" (the parser says
  // so where they are written), so refusing that under kind = "local"
  // refuses them all.
  if (wf.sandbox.kind != "local" || wf.sandbox.network != "proxies") return;
  if (const toml::node* net = doc.at_path("sandbox.network").node())
    errors_.emplace_back(location_of(*net), "network = \"proxies\" in [sandbox] is not available" + std::string(kLocalRefused));
}

void ProxyReader::read_step(const toml::node& value, Step& step, const std::string& where) {
  std::vector<proxy::ConfigError> errors;
  step.proxies = proxy::parse_step_proxies(value, config_, where, errors,
                                           [](const std::string& name, const std::vector<std::string>& defined) {
                                             return did_you_mean(name, defined);
                                           });
  report(errors);
}

}  // namespace hearth::workflows
