// The server's listeners, its per-step state (rate buckets) and its end.
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/connection.h"
#include "util/sigpipe.h"

namespace hearth::proxy {

Status ServerImpl::listen() {
  if (!opts_.secrets) opts_.secrets = std::make_shared<commands::SecretSet>();
  struct stat st {};
  if (::stat(opts_.socket_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Error{"the proxy socket directory '" + opts_.socket_dir + "' does not exist"};
  size_t n = opts_.proxies.size();
  if (size_t(opts_.first_port) + n > 65535 || opts_.first_port == 0)
    return Error{"the proxies' ports (" + std::to_string(opts_.first_port) + " and the " + std::to_string(n) +
                 " after it) do not fit below 65536"};
  uint64_t now = uv_now(loop_);
  for (auto& p : opts_.proxies) {
    ProxyState s;
    if (p.def.rate) s.bucket.emplace(*p.def.rate, now);
    for (auto& r : p.def.allow) {
      s.rule_buckets.emplace_back();
      if (r.rate) s.rule_buckets.back().emplace(*r.rate, now);
    }
    state_.push_back(std::move(s));
  }
  http_ = http::HttpClient::create(loop_);
  std::string egress_url = "http://127.0.0.1:" + std::to_string(opts_.first_port);
  if (auto s = add_endpoint(-1, opts_.socket_dir + "/egress.sock", opts_.first_port, ""); !s.ok()) return s;
  for (const char* var : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"})
    env_.push_back(std::string(var) + "=" + egress_url);
  for (const char* var : {"NO_PROXY", "no_proxy"}) env_.push_back(std::string(var) + "=127.0.0.1,localhost");
  for (size_t i = 0; i < n; ++i) {
    const std::string& name = opts_.proxies[i].def.name;
    auto port = static_cast<uint16_t>(opts_.first_port + 1 + i);
    if (auto s = add_endpoint(static_cast<int>(i), opts_.socket_dir + "/proxy-" + name + ".sock", port,
                              env_name(name) + "=http://127.0.0.1:" + std::to_string(port));
        !s.ok())
      return s;
  }
  return {};
}

Status ServerImpl::add_endpoint(int proxy, const std::string& path, uint16_t port, const std::string& env) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return Error{"the proxy socket path '" + path + "' is too long for a Unix socket; use a shorter socket directory"};
  auto* ep = new Endpoint;
  ep->server = this;
  ep->proxy = proxy;
  uv_pipe_init(loop_, &ep->pipe, 0);
  ep->pipe.data = ep;
  endpoints_.push_back(ep);
  ++open_endpoints_;
  if (int rc = uv_pipe_bind(&ep->pipe, path.c_str()))
    return Error{"cannot create the proxy socket " + path + ": " + uv_strerror(rc)};
  ep->path = path;  // ours to remove from now on
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&ep->pipe), 128, &ServerImpl::on_connection))
    return Error{"cannot listen on " + path + ": " + uv_strerror(rc)};
  forwards_.push_back({port, path});
  if (!env.empty()) env_.push_back(env);
  return {};
}

void ServerImpl::on_connection(uv_stream_t* s, int status) noexcept {
  auto* ep = static_cast<Endpoint*>(s->data);
  ServerImpl* self = ep->server;
  if (status < 0 || self->closing_) return;
  auto* c = new Conn(*self, ep->proxy);
  self->conns_.insert(c);
  if (uv_accept(s, c->client()) != 0) return c->close_now();
  c->start(self->conns_.size() > self->opts_.limits.max_connections);
}

void ServerImpl::emit(ProxyEvent e) const {
  if (opts_.on_event) opts_.on_event(e);
}

void ServerImpl::forget(Conn* c) {
  conns_.erase(c);
  maybe_free();
}

void ServerImpl::close(std::function<void()> closed) {
  if (closing_) return;
  closing_ = true;
  closed_ = std::move(closed);
  for (Endpoint* ep : endpoints_)
    uv_close(reinterpret_cast<uv_handle_t*>(&ep->pipe), [](uv_handle_t* h) noexcept {
      auto* ep = static_cast<Endpoint*>(h->data);
      ServerImpl* self = ep->server;
      if (!ep->path.empty()) ::unlink(ep->path.c_str());
      delete ep;
      --self->open_endpoints_;
      self->maybe_free();
    });
  endpoints_.clear();
  // Connections cancel their transfers while the client still exists.
  std::set<Conn*> open = conns_;
  for (Conn* c : open) c->close_now();
  if (http_) http_->close();  // frees itself once its handles have closed
  http_ = nullptr;
  maybe_free();
}

void ServerImpl::maybe_free() {
  if (!closing_ || open_endpoints_ > 0 || !conns_.empty()) return;
  auto closed = std::move(closed_);
  delete this;
  if (closed) closed();
}

Result<ProxyServer*> ProxyServer::start(uv_loop_t* loop, ProxyServerOptions options) {
  // A sandbox that closes its end early must not end the engine.
  util::ignore_sigpipe_if_default();
  auto* s = new ServerImpl(loop, std::move(options));
  if (auto st = s->listen(); !st.ok()) {
    s->close(nullptr);
    return st.error();
  }
  return static_cast<ProxyServer*>(s);
}

}  // namespace hearth::proxy
