// The webhook server of `hearth serve` (part of libhearth's public API):
// GitHub deliveries in, runs of the matching workflows out on an Engine,
// read endpoints and server-sent event streams for watchers. docs/serve.md
// describes the endpoints, the durable delivery queue and the limits.
//
//   auto engine = hearth::Engine::open(loop, {.state_path = ..., .repo = "/src/app"});
//   hearth::Server server(**engine, {.webhook_secret = secret});
//   if (auto s = server.start(); !s.ok()) ...;    // listens, and resumes what an earlier process left
//   ...                                           // the host runs its loop
//   server.shutdown([&](bool ok) { ... });        // then the engine may be destroyed
//
// Same threading contract as Engine: every call on the loop's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "hearth/engine.h"
#include "hearth/export.h"
#include "hearth/status.h"

namespace hearth {

namespace detail {
struct ServerImpl;
}

/// What the server listens on and what it allows. A limit left empty keeps
/// the default docs/serve.md gives (the same as `hearth serve`'s).
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;             // 0: any free port (see address())
  std::string webhook_secret;  // required: the secret of the GitHub webhook
  std::string api_token;       // bearer token of the read endpoints; empty: they answer 403
  int jobs = 2;                // runs at once (steps within a run: EngineOptions::jobs)
  std::chrono::milliseconds shutdown_grace{10000};  // running steps' time before shutdown() cancels them
  std::optional<std::chrono::milliseconds> request_timeout;  // a whole request
  std::optional<std::chrono::milliseconds> idle_timeout;     // a kept-alive connection with no request
  std::optional<std::chrono::milliseconds> header_timeout;   // to the end of a request's headers
  std::optional<size_t> max_body_bytes;
  std::optional<size_t> max_connections;              // shared fairly between client addresses
  std::optional<size_t> max_peer_pending_body_bytes;  // unauthenticated body bytes held for one address
  std::optional<size_t> max_pending_body_bytes;       // the same, all addresses together
  /// Roles, when several servers share a PostgreSQL store: `accept` listens
  /// and stores deliveries, `work` claims and runs them. At least one; on a
  /// SQLite store, both.
  bool accept = true;
  bool work = true;
};

class HEARTH_API Server {
 public:
  /// Serves the workflows of the engine's repository (EngineOptions::repo)
  /// and records deliveries in its store. `engine` must outlive the server.
  /// REQUIRES at destruction: shutdown() has completed (its `done` has
  /// fired), whether or not start() succeeded.
  Server(Engine& engine, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Queues what an earlier process left (deliveries not done, their
  /// unfinished runs), then listens. The error names the address, the
  /// missing secret or the store; call shutdown() after it too.
  Status start();
  /// "host:port" as bound; empty before start().
  std::string address() const;
  /// Whether the store failed while serving (the server then stops itself).
  bool failed() const;
  /// Graceful stop: no new connections; answers what was received; stops
  /// starting runs; waits up to shutdown_grace for running ones, then
  /// cancels them (their deliveries resume on the next start()). `done` (may
  /// be empty) fires once everything is closed, with false if the store
  /// failed while serving. Calling it again is harmless.
  void shutdown(std::function<void(bool ok)> done);

 private:
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace hearth
