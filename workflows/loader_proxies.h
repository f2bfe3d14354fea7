// Private to workflows/: the loader's part for API proxies (docs/proxies.md).
// proxy/config.h reads the syntax; this joins it to the Workflow and adds
// the checks that need the rest of the file: `kind = "local"` cannot use
// proxies or egress, and a step's grant names a defined proxy.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "proxy/config.h"
#include "workflows/workflow.h"

namespace hearth::workflows {

/// Errors as the loader collects them: place, message without the prefix.
using LoadErrors = std::vector<std::pair<Location, std::string>>;

class ProxyReader {
 public:
  explicit ProxyReader(LoadErrors& errors) : errors_(errors) {}

  /// Reads `[proxies.*]` and `[sandbox] egress` of `doc` into `wf`.
  /// REQUIRES: wf.sandbox was read (kind and network).
  void read(const toml::table& doc, Workflow& wf);

  /// A step's `proxies = [...]` (`value` is the node of that key); `where`
  /// names the step ("step 'summarise'").
  void read_step(const toml::node& value, Step& step, const std::string& where);

 private:
  void report(const std::vector<proxy::ConfigError>& errors);

  LoadErrors& errors_;
  proxy::ProxyConfig config_;
};

}  // namespace hearth::workflows
