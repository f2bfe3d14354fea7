// A step attempt's API proxies (docs/proxies.md): what the engine prepares
// so that the proxies named in the step's `proxies` (and the workflow's
// `egress` pairs) are reachable from its sandbox, with their credentials
// added on the engine's side only.
//
//   <state dir>/grants/<run-id>/<step>.<attempt>.proxies/   0700
//     egress.sock, proxy-<name>.sock    the attempt's ProxyServer
//
// (under /tmp/hearth-proxies-XXXXXX instead when that path would be too
// long for a Unix socket). Nothing of it is visible inside the sandbox: the
// sandbox relays ports on its own loopback to these sockets.
#pragma once

#include <string>
#include <vector>

#include "engine/grants.h"
#include "proxy/server.h"
#include "util/status.h"
#include "workflows/workflow.h"

namespace hearth::engine {

/// Everything one attempt's proxy server needs, made before its process
/// starts.
struct AttemptProxies {
  /// The step's proxies with their headers rendered: secret values in the
  /// clear, for the upstream only.
  std::vector<proxy::StepProxy> proxies;
  std::vector<proxy::EgressTarget> egress;  // the workflow's CONNECT allow-list
  std::string ca_file;     // the engine's $SSL_CERT_FILE, or "" (the system's CAs)
  std::string socket_dir;  // made when the server starts, removed when it has closed
};

/// Whether `step` of `wf` gets a proxy server: the workflow has
/// network = "proxies" and the step is granted proxies or there is egress.
bool uses_proxies(const workflows::Workflow& wf, const workflows::Step& step);

/// Renders the headers of each proxy `step` is granted, taking the secrets
/// they name from `secrets` (read when the run started). Errors name the proxy, the
/// header and the secret, never a value: a secret that is unset, or too
/// short to be masked (commands::kMinSecretLength).
Result<AttemptProxies> prepare_proxies(const workflows::Workflow& wf, const workflows::Step& step,
                                       const SecretValues& secrets);

/// A directory for the attempt's sockets: `preferred` when the longest
/// socket path under it fits a Unix socket, else a fresh one under /tmp.
/// Made 0700. Errors name the path.
Result<std::string> make_proxy_socket_dir(const std::string& preferred, const AttemptProxies& p);

/// `env` ("NAME=value") with every variable that `extra` sets replaced by
/// its entry in `extra`.
void override_env(std::vector<std::string>& env, const std::vector<std::string>& extra);

}  // namespace hearth::engine
