// The engine's end of a step's API proxies. One ProxyServer per step
// attempt, on the engine's loop. It listens on one Unix socket per proxy
// (routing is by socket: no Host header games) plus one for the egress
// proxy; the sandbox reaches them as ports on its own loopback through
// sandbox::LoopbackForward. For each request on a proxy's socket it:
//
//   1. parses it with http_parser (limits on headers, body and time);
//   2. normalizes the path and applies the policy: deny rules first, then
//      allow rules (policy.h) — refused: 403 with a JSON body naming the rule;
//   3. takes a token from the proxy's and the matched rule's buckets —
//      empty: 429 with Retry-After;
//   4. forwards it to the upstream through libcurl (http/'s
//      HttpClient on the same loop; TLS verified), with the configured
//      headers in place of any of the same name the client sent;
//   5. streams the answer back (chunked), every secret value redacted from
//      headers and body (commands/redact.h).
// On the egress socket only CONNECT to a listed host:port is honoured (a
// plain byte tunnel opened from the engine's side); anything else is 403.
// Every request ends in one ProxyEvent. Header values never appear in
// events, logs or errors.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "commands/redact.h"
#include "proxy/definition.h"
#include "sandbox/sandbox.h"
#include "util/status.h"

namespace hearth::proxy {

/// A proxy as one step attempt uses it.
struct StepProxy {
  ProxyDef def;
  /// def.headers rendered (render_headers): secret values in the clear.
  /// They stay in the engine's memory and go only to the upstream.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// What happened to one request (or one CONNECT tunnel).
struct ProxyEvent {
  std::string proxy;            // the proxy's name, or "egress"
  std::string method;           // "GET", "CONNECT", ...
  std::string path;             // normalized path, no query; CONNECT: "host:port". Redacted.
  int status = 0;               // as answered to the sandbox
  /// "allowed", "denied", "rate-limited", "over-budget" (max-requests),
  /// "bad-request", "upstream-error", "client-closed" (the sandbox went
  /// away before the answer ended).
  std::string decision;
  std::string rule;             // label of the deciding rule ("allow[0]", "deny[1]", "policy read-only", "egress", "max-requests 100")
  uint64_t request_bytes = 0;   // body forwarded (CONNECT: bytes tunnelled out)
  uint64_t response_bytes = 0;  // body sent back, after redaction (CONNECT: bytes tunnelled in)
  std::chrono::microseconds duration{};
};

struct ProxyLimits {
  /// Request line and headers; more: 431 and the connection closes.
  size_t max_header_bytes = 64 * 1024;
  /// Request body; more: 413 and the connection closes.
  size_t max_body_bytes = 32 * 1024 * 1024;
  /// First to last byte of a request; slower: 408.
  std::chrono::milliseconds request_timeout{60000};
  /// A kept-alive connection with nothing in progress closes after this.
  std::chrono::milliseconds idle_timeout{300000};
  /// Connecting to an upstream or a CONNECT target.
  std::chrono::milliseconds connect_timeout{10000};
  /// Connections at once (all sockets together); more: 503 and closed.
  size_t max_connections = 256;
  /// Response bytes queued for a slow sandbox reader before the upstream
  /// transfer is paused.
  size_t max_backlog = 1024 * 1024;
};

struct ProxyServerOptions {
  /// Existing directory only the engine's uid can enter (0700); the
  /// sockets are created in it: "egress.sock" and "proxy-<name>.sock".
  std::string socket_dir;
  std::vector<StepProxy> proxies;    // the step's, in its order
  std::vector<EgressTarget> egress;  // CONNECT allow-list
  /// Every secret value to hide from what goes back into the sandbox and
  /// into events: at least those the proxies' headers use.
  std::shared_ptr<const commands::SecretSet> secrets;
  /// A PEM file of CAs trusted for upstream TLS instead of the system store
  /// (tests, private CAs). Empty: the system store.
  std::string ca_file;
  /// Ports inside the sandbox: egress on first_port, the proxies on
  /// first_port + 1, + 2, ... in order.
  uint16_t first_port = 3128;
  ProxyLimits limits;
  /// Once per request, on the loop thread. It must not close() the server
  /// (close it from the step's own exit handling).
  std::function<void(const ProxyEvent&)> on_event;
};

class ProxyServer {
 public:
  /// Creates the sockets and listens. On error nothing is left behind.
  static Result<ProxyServer*> start(uv_loop_t* loop, ProxyServerOptions options);

  /// For the step's sandbox::Isolation::forwards (with Network::proxies).
  virtual const std::vector<sandbox::LoopbackForward>& forwards() const = 0;
  /// "NAME=value" entries for the step's environment:
  /// HEARTH_PROXY_<NAME>=http://127.0.0.1:<port> per proxy; HTTPS_PROXY,
  /// HTTP_PROXY (and lower-case twins) = the egress proxy; NO_PROXY and
  /// no_proxy = "127.0.0.1,localhost" (the API proxies are reached direct).
  virtual const std::vector<std::string>& environment() const = 0;
  /// Connections open now.
  virtual size_t connections() const = 0;
  /// Stops listening, cuts every connection and transfer, removes the
  /// sockets, then calls `closed` (may be null) and frees itself. Once.
  virtual void close(std::function<void()> closed) = 0;

 protected:
  virtual ~ProxyServer() = default;
};

}  // namespace hearth::proxy
