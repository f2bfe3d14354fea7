// CONNECT on the egress socket: a plain byte tunnel, opened from the
// engine's side, to a host:port listed in [sandbox] egress; anything else is
// refused. The bytes are not looked at (TLS passes through end to end).
#include <algorithm>
#include <cctype>
#include <memory>

#include "proxy/connection.h"

namespace hearth::proxy {

void Conn::tunnel(std::string after_headers) {
  if (proxy_ >= 0)
    return refuse(403, "denied", "connect",
                  problem("forbidden", ev_.proxy,
                          "CONNECT is served by the egress proxy ($HTTPS_PROXY) only; this is the API proxy '" +
                              ev_.proxy + "'"));
  http_parser_url u;
  http_parser_url_init(&u);
  const std::string& url = req().target;
  if (http_parser_parse_url(url.data(), url.size(), 1, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
      !(u.field_set & (1 << UF_PORT)) || u.port == 0)
    return refuse(400, "bad-request", "", problem("bad request", "egress", "CONNECT needs a host:port target"));
  std::string host = url.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  EgressTarget wanted{host, u.port, {}};
  ev_.path = server_.redact(wanted.text());
  const auto& egress = server_.opts().egress;
  bool listed = std::any_of(egress.begin(), egress.end(),
                            [&](const EgressTarget& t) { return t.host == host && t.port == u.port; });
  if (!listed) {
    std::string allowed;
    for (auto& t : egress) allowed += (allowed.empty() ? "" : ", ") + t.text();
    return refuse(403, "denied", "egress",
                  problem("forbidden", "egress",
                          wanted.text() + " is not in [sandbox] egress" +
                              (allowed.empty() ? std::string(" (the list is empty)") : " (allowed: " + allowed + ")")));
  }
  tunnel_first_ = std::move(after_headers);
  connecting_ = true;
  resolving_ = true;
  resolve_.data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(server_.loop(), &resolve_, &Conn::on_resolved, host.c_str(), std::to_string(u.port).c_str(), &hints);
  if (rc != 0) {
    resolving_ = connecting_ = false;
    return refuse(502, "upstream-error", "egress",
                  problem("bad gateway", "egress", "cannot resolve " + wanted.text() + ": " + uv_strerror(rc)));
  }
  arm(server_.opts().limits.connect_timeout);
}

void Conn::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, uv_freeaddrinfo);
  auto* c = static_cast<Conn*>(req->data);
  c->resolving_ = false;
  if (c->closing_) return c->maybe_delete();
  if (!c->connecting_) return;  // timed out: already answered
  if (status < 0 || !res) {
    c->connecting_ = false;
    return c->refuse(502, "upstream-error", "egress",
                     problem("bad gateway", "egress", "cannot resolve " + c->ev_.path + ": " + uv_strerror(status)));
  }
  uv_tcp_init(c->server_.loop(), &c->target_);
  c->target_.data = c;
  ++c->handles_;
  c->connect_.data = c;
  if (int rc = uv_tcp_connect(&c->connect_, &c->target_, res->ai_addr, &Conn::on_target_connected); rc != 0) {
    c->connecting_ = false;
    c->refuse(502, "upstream-error", "egress",
              problem("bad gateway", "egress", "cannot connect to " + c->ev_.path + ": " + uv_strerror(rc)));
  }
}

void Conn::on_target_connected(uv_connect_t* req, int status) noexcept {
  auto* c = static_cast<Conn*>(req->data);
  if (c->closing_ || !c->connecting_) return;
  c->connecting_ = false;
  uv_timer_stop(&c->timer_);
  if (status < 0)
    return c->refuse(502, "upstream-error", "egress",
                     problem("bad gateway", "egress", "cannot connect to " + c->ev_.path + ": " + uv_strerror(status)));
  uv_tcp_nodelay(&c->target_, 1);
  c->ev_.status = 200;
  c->ev_.decision = "allowed";
  c->ev_.rule = "egress";
  c->write("HTTP/1.1 200 Connection established\r\n\r\n");
  c->start_splice();
}

void Conn::start_splice() {
  // The Splice is a member: it outlives the handles' close callbacks.
  splice_.start(client(), reinterpret_cast<uv_stream_t*>(&target_), std::move(tunnel_first_),
                [this](Status, const sandbox::Splice::Totals& t) {
                  ev_.request_bytes = t.a_to_b;
                  ev_.response_bytes = t.b_to_a;
                  emit();
                  close_now();
                });
}

}  // namespace hearth::proxy
