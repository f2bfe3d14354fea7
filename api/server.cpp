// hearth::Server (public API) over ci::Server, on the store and engine of a
// public hearth::Engine.
#include "hearth/server.h"

#include "api/engine_impl.h"
#include "ci/serve.h"

namespace hearth {

namespace detail {
struct ServerImpl {
  ServerImpl(std::string problem, EngineImpl& e, ci::ServeOptions options)
      : problem(std::move(problem)), server(e.loop, *e.store, *e.engine, std::move(options)) {}
  std::string problem;  // what start() refuses to start without; empty when nothing is missing
  ci::Server server;
};
}  // namespace detail

namespace {

ci::ServeOptions serve_options(const detail::EngineImpl& engine, ServerOptions o) {
  ci::ServeOptions out;
  out.host = std::move(o.host);
  out.port = o.port;
  out.repo = engine.options.repo;
  out.webhook_secret = std::move(o.webhook_secret);
  out.api_token = std::move(o.api_token);
  out.jobs = o.jobs;
  out.step_jobs = engine.options.jobs;
  out.shutdown_grace = o.shutdown_grace;
  out.accept = o.accept;
  out.work = o.work;
  out.store_location = engine.options.state_path;
  http::HttpLimits& l = out.limits;
  l.request_timeout = o.request_timeout.value_or(l.request_timeout);
  l.idle_timeout = o.idle_timeout.value_or(l.idle_timeout);
  l.header_timeout = o.header_timeout.value_or(l.header_timeout);
  l.max_body_bytes = o.max_body_bytes.value_or(l.max_body_bytes);
  l.max_connections = o.max_connections.value_or(l.max_connections);
  l.max_peer_pending_body_bytes = o.max_peer_pending_body_bytes.value_or(l.max_peer_pending_body_bytes);
  l.max_pending_body_bytes = o.max_pending_body_bytes.value_or(l.max_pending_body_bytes);
  return out;
}

}  // namespace

Server::Server(Engine& engine, ServerOptions options) {
  detail::EngineImpl& e = detail::impl_of(engine);
  std::string missing;
  if (options.webhook_secret.empty() && options.accept) missing = "hearth::Server: ServerOptions::webhook_secret is empty";
  else if (e.options.repo.empty()) missing = "hearth::Server: the engine has no repository (EngineOptions::repo)";
  impl_ = std::make_unique<detail::ServerImpl>(std::move(missing), e, serve_options(e, std::move(options)));
}

Server::~Server() = default;

Status Server::start() {
  if (!impl_->problem.empty()) return Error{impl_->problem};
  return impl_->server.start();
}

std::string Server::address() const { return impl_->server.address(); }
bool Server::failed() const { return impl_->server.failed(); }
void Server::shutdown(std::function<void(bool ok)> done) { impl_->server.shutdown(std::move(done)); }

}  // namespace hearth
