#include "http/server.h"

#include <http_parser.h>

#include <cstring>

#include "http/server_connection.h"

namespace hearth::http {

namespace {

constexpr std::chrono::milliseconds kDrainTime{2000};  // reading what a client still sends after our last answer
const std::string kEmpty;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

std::string peer_of(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[64] = {0};
  int port = 0;
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    return std::string("[") + ip + "]:" + std::to_string(port);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&addr);
  uv_ip4_name(a, ip, sizeof ip);
  port = ntohs(a->sin_port);
  return std::string(ip) + ":" + std::to_string(port);
}

// The budget a client counts against: its IPv4 address, or the /64 prefix
// of its IPv6 address (one host commonly holds a whole /64).
std::string peer_key_of(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[64] = {0};
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
      return ip;
    }
    sockaddr_in6 prefix = *a;
    std::memset(&prefix.sin6_addr.s6_addr[8], 0, 8);
    uv_ip6_name(&prefix, ip, sizeof ip);
    return std::string(ip) + "/64";
  }
  uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof ip);
  return ip;
}

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

}  // namespace

const std::string& HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}


void Connection::start(std::string peer, std::string key, bool over_limit, uint64_t seq) {
  uv_tcp_nodelay(&tcp_, 1);
  peer_ = std::move(peer);
  peer_key_ = std::move(key);
  seq_ = seq;
  counted_ = true;
  server_.peer_opened(peer_key_);
  uv_read_start(stream(), &Connection::on_alloc, &Connection::on_read);
  if (over_limit) return respond_error(503, "too many connections; try again later");
  arm(server_.limits_.header_timeout);  // a new connection owes its first request's headers
}

void Connection::release_held() {
  if (held_ == 0) return;
  server_.release_body_bytes(peer_key_, held_);
  held_ = 0;
}

void Connection::release() {
  release_held();
  if (!counted_) return;
  counted_ = false;
  server_.peer_closed(peer_key_);
}

void Connection::on_request_begin() {
  request_started_ = uv_now(server_.loop_);
  // Whichever comes first: the headers' deadline or the whole request's.
  arm(std::min(server_.limits_.header_timeout, server_.limits_.request_timeout));
}

Refusal Connection::on_head(Request& head) {
  req_ = HttpRequest{};
  req_.peer = peer_;
  req_.method = head.method;
  std::string& target = head.target;
  if (auto q = target.find('?'); q != std::string::npos) {
    req_.query = target.substr(q + 1);
    req_.path = target.substr(0, q);
  } else {
    req_.path = target;
  }
  for (auto& [field, value] : head.headers) {
    std::string name = lower(std::move(field));
    if (auto it = req_.headers.find(name); it != req_.headers.end()) it->second += ", " + value;
    else req_.headers.emplace(std::move(name), std::move(value));
  }
  head.headers.clear();
  if (server_.head_handler_) {
    HeadDecision d = server_.head_handler_(req_);
    if (d.status != 0) return Refusal{d.status, std::move(d.message)};
    req_.tap = std::move(d.tap);
  }
  uint64_t spent = uv_now(server_.loop_) - request_started_;
  uint64_t total = static_cast<uint64_t>(server_.limits_.request_timeout.count());
  arm(std::chrono::milliseconds(total > spent ? total - spent : 1));
  return {};
}

Refusal Connection::on_body(std::string_view chunk) {
  if (!server_.hold_body_bytes(this, chunk.size()))
    return Refusal{429, "too many request bytes from this address, or in total, are waiting to be checked; send again later"};
  held_ += chunk.size();
  if (req_.tap) req_.tap->update(chunk);
  return {};
}

void Connection::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* c = static_cast<Connection*>(s->data);
  if (c->closing_) return;
  if (n < 0) {
    if (c->streaming_) {
      if (c->on_gone_) std::exchange(c->on_gone_, nullptr)();
      return c->close_now();
    }
    // The client ended its side while our last answer may still be queued:
    // the shutdown's callback closes once it is written. A failed connection
    // (not an end of input) has nothing left to deliver to.
    if (c->draining_ && (n != UV_EOF || uv_stream_get_write_queue_size(s) == 0)) return c->close_now();
    c->eof_ = true;
    uv_read_stop(s);
    c->reading_ = false;
    if (c->in_flight_ || c->draining_) return;  // answer, then close
    c->parse_pending();
    if (c->closing_ || c->draining_ || c->in_flight_) return;
    // End of input: a request cut short is answered; otherwise close once
    // what was answered is written.
    if (c->reader_.cut_short()) return c->respond_error(400, "the request ended before it was complete");
    return c->shutdown_and_close();
  }
  if (n == 0 || c->draining_) return;
  c->reader_.append(buf->base, static_cast<size_t>(n));
  if (!c->in_flight_ && !c->streaming_) return c->parse_pending();
  // Pipelined bytes wait for the answer; a client that sends far ahead is paused.
  if (!c->reader_.far_ahead()) return;
  uv_read_stop(s);
  c->reading_ = false;
}

void Connection::parse_pending() {
  if (parsing_) return;
  parsing_ = true;
  bool more = true;
  while (more && !in_flight_ && !streaming_ && !closing_ && !draining_) {
    switch (reader_.next()) {
      case RequestReader::Next::more: more = false; break;
      case RequestReader::Next::request:
      case RequestReader::Next::upgrade: dispatch(); break;  // an upgrade is answered, then the connection closes
      case RequestReader::Next::failed:
        respond_error(reader_.error_status(), reader_.error_message());
        more = false;
        break;
    }
  }
  parsing_ = false;
  if (!reading_ && !eof_ && !closing_ && !draining_ && reader_.pending_bytes() <= server_.limits_.max_header_bytes) {
    uv_read_start(stream(), &Connection::on_alloc, &Connection::on_read);
    reading_ = true;
  }
}

void Connection::dispatch() {
  in_flight_ = true;
  keep_alive_ = reader_.keep_alive();
  uv_timer_stop(&timer_);
  release_held();  // the handler has it now
  req_.body = std::move(reader_.request().body);
  server_.handler_(std::move(req_), Responder(self_));
  req_ = HttpRequest{};
}

// Most answers fit the socket's buffer: written at once, they cost no request,
// no callback, and no epoll_ctl (libuv re-arms the watcher after each queued
// write completes). uv_try_write refuses while earlier writes are queued, so
// the order of the bytes is kept; what it cannot write goes the queued way.
void Connection::write(std::string data) {
  uv_buf_t now = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  int n = uv_try_write(stream(), &now, 1);
  if (n == static_cast<int>(data.size())) return;
  if (n > 0) data.erase(0, static_cast<size_t>(n));
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream(), &b, 1, [](uv_write_t* req, int) noexcept {
    delete static_cast<WriteReq*>(req->data);
  });
  if (rc != 0) delete w;
}

void Connection::send_response(HttpResponse r) {
  if (!in_flight_ || closing_) return;
  in_flight_ = false;
  bool close_after = closing_after_answer();
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                     http_status_str(static_cast<http_status>(r.status)) + "\r\n";
  for (auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  head += close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  write(head + r.body);
  if (close_after) return shutdown_and_close();
  arm(server_.limits_.idle_timeout);
  parse_pending();
}

void Connection::respond_error(int status, const std::string& message) {
  release_held();
  keep_alive_ = false;
  in_flight_ = true;
  send_response(HttpResponse{status, {{"Content-Type", "text/plain; charset=utf-8"}}, message + "\n"});
}

void Connection::start_stream(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                              std::function<void()> on_gone) {
  if (!in_flight_ || closing_) return;
  in_flight_ = false;
  streaming_ = true;
  on_gone_ = std::move(on_gone);
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + http_status_str(static_cast<http_status>(status)) +
                     "\r\n";
  for (auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Connection: close\r\n\r\n";
  write(std::move(head));
  // A stream has no end in sight: watch for the client leaving.
  if (!reading_ && !eof_) {
    uv_read_start(stream(), &Connection::on_alloc, &Connection::on_read);
    reading_ = true;
  }
}

bool Connection::write_stream(std::string chunk) {
  if (!streaming_ || closing_) return false;
  if (uv_stream_get_write_queue_size(stream()) > server_.limits_.max_stream_backlog) {
    if (on_gone_) std::exchange(on_gone_, nullptr)();
    close_now();
    return false;
  }
  write(std::move(chunk));
  return true;
}

void Connection::end_stream() {
  if (!streaming_ || closing_) return;
  streaming_ = false;
  on_gone_ = nullptr;
  shutdown_and_close();
}

void Connection::shutdown_and_close() {
  if (closing_ || draining_) return;
  draining_ = true;
  release();
  self_.reset();
  reader_.drop_pending();
  arm(kDrainTime);
  shutdown_.data = this;
  // The shutdown completes once every queued write is on the wire. A client
  // that has ended its side sends nothing more: close then (closing now would
  // drop what is still queued of the answer).
  int rc = uv_shutdown(&shutdown_, stream(), [](uv_shutdown_t* req, int status) noexcept {
    auto* c = static_cast<Connection*>(req->data);
    if (status < 0 || c->eof_) c->close_now();
  });
  if (rc != 0) return close_now();
  // Otherwise read (and discard) until the client closes: closing with unread
  // input would reset the connection and could lose the answer.
  if (!reading_ && !eof_) {
    uv_read_start(stream(), &Connection::on_alloc, &Connection::on_read);
    reading_ = true;
  }
}

void Connection::on_timer(uv_timer_t* t) noexcept {
  auto* c = static_cast<Connection*>(t->data);
  if (c->draining_ || !c->reader_.in_request()) return c->close_now();
  const auto& limits = c->server_.limits_;
  if (!c->reader_.head_done() && limits.header_timeout < limits.request_timeout)
    return c->respond_error(408, "the request's headers took longer than " +
                                     std::to_string(limits.header_timeout.count()) + " ms to arrive");
  c->respond_error(408, "the request took longer than " + std::to_string(limits.request_timeout.count()) +
                            " ms to arrive");
}

void Connection::close_now() {
  if (closing_) return;
  closing_ = true;
  release();
  self_.reset();
  if (streaming_ && on_gone_) std::exchange(on_gone_, nullptr)();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::on_closed);
}

void Connection::on_closed(uv_handle_t* h) noexcept {
  auto* c = static_cast<Connection*>(h->data);
  if (--c->open_handles_ > 0) return;
  c->server_.forget(c);
  delete c;
}

// --- Responder ---

Responder::Responder(Responder&& o) noexcept : conn_(std::move(o.conn_)), streaming_(o.streaming_) { o.conn_.reset(); }

Responder& Responder::operator=(Responder&& o) noexcept {
  if (this != &o) {
    this->~Responder();
    conn_ = std::move(o.conn_);
    streaming_ = o.streaming_;
    o.conn_.reset();
  }
  return *this;
}

Responder::~Responder() {
  Connection* c = connection();
  if (!c) return;
  if (streaming_) c->end_stream();
  else if (c->in_flight()) c->send_response(HttpResponse{500, {}, "the request was dropped unanswered\n"});
}

Connection* Responder::connection() const {
  auto p = conn_.lock();
  return p ? *p : nullptr;
}

bool Responder::alive() const { return connection() != nullptr; }

void Responder::send(HttpResponse response) {
  if (Connection* c = connection()) c->send_response(std::move(response));
  conn_.reset();
}

void Responder::start_stream(int status, std::vector<std::pair<std::string, std::string>> headers,
                             std::function<void()> on_gone) {
  if (Connection* c = connection()) {
    c->start_stream(status, headers, std::move(on_gone));
    streaming_ = true;
  }
}

bool Responder::write(std::string chunk) {
  Connection* c = connection();
  return c && c->write_stream(std::move(chunk));
}

void Responder::end() {
  if (Connection* c = connection()) c->end_stream();
  conn_.reset();
}

// --- HttpServer ---

HttpServer::HttpServer(uv_loop_t* loop, HttpLimits limits, HttpHandler handler, HeadHandler head_handler)
    : loop_(loop), limits_(limits), handler_(std::move(handler)), head_handler_(std::move(head_handler)) {
  // One request of the largest size must fit in its peer's budget, and one
  // peer's budget in the total.
  limits_.max_peer_pending_body_bytes = std::max(limits_.max_peer_pending_body_bytes, limits_.max_body_bytes);
  limits_.max_pending_body_bytes = std::max(limits_.max_pending_body_bytes, limits_.max_peer_pending_body_bytes);
}

Result<HttpServer*> HttpServer::listen(uv_loop_t* loop, const std::string& host, int port, HttpLimits limits,
                                       HttpHandler handler, HeadHandler head_handler) {
  auto* s = new HttpServer(loop, limits, std::move(handler), std::move(head_handler));
  uv_tcp_init(loop, &s->listener_);
  s->listener_.data = s;
  sockaddr_storage addr{};
  int rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  std::string what = "cannot listen on " + host + ":" + std::to_string(port) + ": ";
  if (rc != 0) what += "not an IP address";
  if (rc == 0) rc = uv_tcp_bind(&s->listener_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s->listener_), 511, &HttpServer::on_connection);
  if (rc != 0) {
    if (what.back() == ' ') what += uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t*>(&s->listener_),
             [](uv_handle_t* h) noexcept { delete static_cast<HttpServer*>(h->data); });
    return Error{what};
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&s->listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);  // same offset for IPv6
  s->host_ = host;
  s->listening_ = true;
  return s;
}

std::string HttpServer::address() const {
  bool v6 = host_.find(':') != std::string::npos;
  return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

void HttpServer::on_connection(uv_stream_t* listener, int status) noexcept {
  auto* s = static_cast<HttpServer*>(listener->data);
  if (status < 0 || s->closing_) return;
  auto* c = new Connection(*s);
  if (uv_accept(listener, c->stream()) != 0) {
    s->connections_.insert(c);
    return c->close_now();
  }
  std::string key = peer_key_of(c->tcp());
  bool room = s->make_room_for(key);
  s->connections_.insert(c);
  c->start(peer_of(c->tcp()), std::move(key), !room, ++s->accepted_);
}

void HttpServer::stop_accepting() {
  if (!listening_) return;
  listening_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) noexcept {
    auto* s = static_cast<HttpServer*>(h->data);
    s->listener_closed_ = true;
    s->maybe_finish();
  });
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (auto* c : open) c->stop();
}

void HttpServer::close(std::function<void()> done) {
  closing_ = true;
  on_closed_ = std::move(done);
  stop_accepting();
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (auto* c : open) c->close_now();
  maybe_finish();
}

void HttpServer::forget(Connection* c) {
  connections_.erase(c);
  maybe_finish();
}

void HttpServer::maybe_finish() {
  if (!closing_ || !listener_closed_ || !connections_.empty()) return;
  auto done = std::move(on_closed_);
  delete this;
  if (done) done();
}

}  // namespace hearth::http
