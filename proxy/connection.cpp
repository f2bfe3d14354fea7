// Reading requests from the sandbox and writing answers. Requests are read
// by http::RequestReader (limits on header and body bytes, token field
// names, one request at a time); this file adds the deadline, keep-alive
// with pipelined requests answered one at a time, and the lifetime of the
// connection's handles.
#include "proxy/connection.h"

namespace hearth::proxy {

namespace {
constexpr std::chrono::milliseconds kDrainTime{2000};  // reading what a client still sends after our last answer
}  // namespace

// A write and the connection it belongs to (alive until the client's close
// callback, which comes after every write callback).
struct WriteReq {
  uv_write_t req{};
  std::string data;
  Conn* conn = nullptr;
};

nlohmann::json problem(const std::string& error, const std::string& proxy, const std::string& reason) {
  return {{"error", error}, {"proxy", proxy}, {"reason", reason}};
}

Conn::Conn(ServerImpl& server, int proxy)
    : server_(server),
      proxy_(proxy),
      reader_({server.opts().limits.max_header_bytes, server.opts().limits.max_body_bytes, true}, *this) {
  uv_pipe_init(server_.loop(), &client_, 0);
  uv_timer_init(server_.loop(), &timer_);
  client_.data = this;
  timer_.data = this;
  ev_.proxy = proxy < 0 ? "egress" : server_.opts().proxies[static_cast<size_t>(proxy)].def.name;
}

void Conn::start(bool over_limit) {
  start_reading();
  began_ = std::chrono::steady_clock::now();
  if (over_limit) {
    busy_ = true;
    keep_alive_ = false;
    send_whole(503, {{"Content-Type", "application/json"}},
               problem("too many connections", ev_.proxy,
                       "the proxy serves at most " + std::to_string(server_.opts().limits.max_connections) +
                           " connections at once; try again")
                       .dump());
    return shutdown_and_close();
  }
  arm(server_.opts().limits.idle_timeout);
}

void Conn::on_request_begin() {
  began_ = std::chrono::steady_clock::now();
  arm(server_.opts().limits.request_timeout);
}

void Conn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* c = static_cast<Conn*>(h->data);
  *buf = uv_buf_init(c->server_.read_buf, sizeof c->server_.read_buf);
}

void Conn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* c = static_cast<Conn*>(s->data);
  if (c->closing_ || n == 0) return;
  if (n < 0) {
    if (c->draining_) return c->close_now();
    c->eof_ = true;
    uv_read_stop(s);
    c->reading_ = false;
    if (c->busy_) return;  // answer, then close
    c->parse_pending();
    if (c->busy_ || c->closing_ || c->draining_) return;
    if (c->reader_.cut_short()) {
      c->keep_alive_ = false;
      c->busy_ = true;
      c->ev_pending_ = true;
      return c->refuse(400, "bad-request", "", problem("bad request", c->ev_.proxy, "the request ended before it was complete"));
    }
    return c->close_now();
  }
  if (c->draining_) return;
  c->reader_.append(buf->base, static_cast<size_t>(n));
  if (c->busy_) {
    // Pipelined bytes wait for the answer; a client far ahead is paused.
    if (c->reader_.far_ahead()) {
      uv_read_stop(s);
      c->reading_ = false;
    }
    return;
  }
  c->parse_pending();
}

void Conn::start_reading() {
  if (reading_ || eof_ || closing_) return;
  reading_ = uv_read_start(client(), &Conn::on_alloc, &Conn::on_read) == 0;
}

void Conn::parse_pending() {
  if (parsing_) return;
  parsing_ = true;
  bool more = true;
  while (more && !busy_ && !closing_ && !draining_) {
    switch (reader_.next()) {
      case http::RequestReader::Next::more: more = false; break;
      case http::RequestReader::Next::request: dispatch({}); break;
      case http::RequestReader::Next::upgrade:
        dispatch(reader_.take_rest());
        more = false;
        break;
      case http::RequestReader::Next::failed: {
        keep_alive_ = false;
        busy_ = true;
        ev_pending_ = true;
        ev_.method = req().method;
        int status = reader_.error_status();
        refuse(status, "bad-request", "",
               problem(status == 400 ? "bad request" : "request too large", ev_.proxy, reader_.error_message()));
        more = false;
        break;
      }
    }
  }
  parsing_ = false;
  if (!busy_ && !draining_ && reader_.pending_bytes() <= server_.opts().limits.max_header_bytes) start_reading();
}

void Conn::dispatch(std::optional<std::string> after_headers) {
  bool upgrade = after_headers.has_value();
  busy_ = true;
  uv_timer_stop(&timer_);
  std::string name = ev_.proxy;
  ev_ = ProxyEvent{};
  ev_.proxy = name;
  ev_.method = req().method;
  ev_pending_ = true;
  keep_alive_ = reader_.keep_alive();
  if (upgrade) {
    // What follows the head is another protocol: leave it to the tunnel.
    uv_read_stop(client());
    reading_ = false;
    keep_alive_ = false;
    if (req().method == "CONNECT") return tunnel(std::move(*after_headers));
    return refuse(501, "bad-request", "",
                  problem("not supported", ev_.proxy, "protocol upgrades (Upgrade: ...) are not supported by the proxy"));
  }
  if (proxy_ < 0)
    return refuse(403, "denied", "egress",
                  problem("forbidden", "egress",
                          "this is the egress proxy: it only opens CONNECT tunnels to the hosts in [sandbox] egress "
                          "(plain-HTTP forwarding is not offered); API proxies are reached at $HEARTH_PROXY_<NAME>"));
  forward();
}

void Conn::write(std::string data) {
  if (closing_ || data.empty()) return;
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->conn = this;
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, client(), &b, 1, [](uv_write_t* req, int status) noexcept {
    std::unique_ptr<WriteReq> w(static_cast<WriteReq*>(req->data));
    if (status < 0) return w->conn->close_now();  // the sandbox's side is gone
    w->conn->on_written();
  });
  if (rc != 0) {
    delete w;
    close_now();
  }
}

void Conn::arm(std::chrono::milliseconds ms) {
  if (!closing_) uv_timer_start(&timer_, &Conn::on_timer, static_cast<uint64_t>(ms.count()), 0);
}

void Conn::send_whole(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& body) {
  if (req().http10) keep_alive_ = false;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + http_status_str(static_cast<http_status>(status)) + "\r\n";
  for (auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += keep_alive_ && !eof_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  write(req().method == "HEAD" ? head : head + body);
  if (req().method != "HEAD") ev_.response_bytes += body.size();
}

void Conn::refuse(int status, const std::string& decision, const std::string& rule, nlohmann::json body,
                  std::vector<std::pair<std::string, std::string>> extra) {
  ev_.status = status;
  ev_.decision = decision;
  ev_.rule = rule;
  if (!rule.empty()) body["rule"] = rule;
  if (!req().method.empty()) body["method"] = req().method;
  if (!ev_.path.empty()) body["path"] = ev_.path;
  extra.emplace_back("Content-Type", "application/json");
  send_whole(status, extra, server_.redact(body.dump()) + "\n");
  finish_request();
}

void Conn::finish_request() {
  emit();
  busy_ = false;
  if (closing_) return;
  if (!keep_alive_ || eof_ || req().http10) return shutdown_and_close();
  arm(server_.opts().limits.idle_timeout);
  parse_pending();
}

void Conn::emit() {
  if (!ev_pending_) return;
  ev_pending_ = false;
  ev_.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - began_);
  server_.emit(ev_);
}

void Conn::shutdown_and_close() {
  if (closing_ || draining_) return;
  draining_ = true;
  reader_.drop_pending();
  arm(kDrainTime);
  shutdown_.data = this;
  int rc = uv_shutdown(&shutdown_, client(), [](uv_shutdown_t* req, int status) noexcept {
    if (status < 0) static_cast<Conn*>(req->data)->close_now();
  });
  if (rc != 0) return close_now();
  // Read (and drop) until the client closes: closing with unread input
  // would reset the connection and could lose the answer.
  start_reading();
  if (eof_) close_now();
}

void Conn::on_timer(uv_timer_t* t) noexcept {
  auto* c = static_cast<Conn*>(t->data);
  if (c->connecting_) {  // a CONNECT target did not answer in time
    c->connecting_ = false;
    if (c->resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve_));
    return c->refuse(504, "upstream-error", "egress",
                     problem("gateway timeout", "egress", "the target did not accept a connection in time"));
  }
  if (c->draining_ || !c->reader_.in_request()) return c->close_now();
  c->keep_alive_ = false;
  c->busy_ = true;
  c->ev_pending_ = true;
  c->refuse(408, "bad-request", "",
            problem("request timeout", c->ev_.proxy,
                    "the request took longer than " +
                        std::to_string(c->server_.opts().limits.request_timeout.count()) + " ms to arrive"));
}

void Conn::close_now() {
  if (closing_) return;
  closing_ = true;
  // libcurl forbids removing a transfer from inside its callbacks: from
  // there, maybe_delete cancels it (the handlers ignore a closing connection).
  if (transfer_ && !in_upstream_cb_) {
    if (server_.http()) server_.http()->cancel(*transfer_);
    transfer_.reset();
    easy_ = nullptr;
  }
  splice_.cut("the connection closed");
  if (ev_pending_) {
    if (ev_.decision.empty() || ev_.decision == "allowed") ev_.decision = "client-closed";
    emit();
  }
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_));
  uv_close(reinterpret_cast<uv_handle_t*>(&client_), &Conn::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Conn::on_closed);
  if (target_.type != UV_UNKNOWN_HANDLE) uv_close(reinterpret_cast<uv_handle_t*>(&target_), &Conn::on_closed);
}

void Conn::on_closed(uv_handle_t* h) noexcept {
  auto* c = static_cast<Conn*>(h->data);
  --c->handles_;
  c->maybe_delete();
}

void Conn::maybe_delete() {
  if (handles_ > 0 || resolving_) return;
  if (transfer_ && server_.http()) server_.http()->cancel(*transfer_);
  server_.forget(this);
  delete this;
}

}  // namespace hearth::proxy
