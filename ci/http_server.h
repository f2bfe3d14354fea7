// A small HTTP/1.1 server on a libuv loop. Parsing is http_parser's
// (libhttp-parser); this file adds what a server exposed to the internet
// needs around it: keep-alive, pipelining answered in order, limits on the
// request line + headers and on the body, chunked request bodies, timeouts
// for slow clients, a cap on connections, and streamed responses (SSE) with
// a bound on how far a reader may fall behind. Knows nothing of webhooks.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::ci {

struct HttpLimits {
  /// Request line and headers together; more is answered 431 and closed.
  size_t max_header_bytes = 16 * 1024;
  /// Body after de-chunking; more is answered 413 and closed (at once when
  /// Content-Length announces it).
  size_t max_body_bytes = 25 * 1024 * 1024;
  /// From the first byte of a request to its last; a client slower than
  /// that is answered 408 and closed.
  std::chrono::milliseconds request_timeout{30000};
  /// A kept-alive connection with no request in progress is closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  /// Connections beyond this are answered 503 and closed.
  size_t max_connections = 1024;
  /// Bytes a streamed response may have queued for a reader that does not
  /// read; beyond it the connection is closed.
  size_t max_stream_backlog = 1024 * 1024;
};

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // the target without its query, as sent
  std::string query;                           // after '?', as sent; empty when none
  std::map<std::string, std::string> headers;  // lower-case names; repeats joined with ", "
  std::string body;                            // de-chunked
  std::string peer;                            // "ip:port" of the client
  /// The header's value, or "" when absent. `name` in lower case.
  const std::string& header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length and Connection are added
  std::string body;
};

class Connection;

/// The right to answer one request, now or later (after a commit, for a
/// stream). Move-only. If the client is gone, every call is a no-op; if a
/// Responder is destroyed without answering, the request gets a 500.
class Responder {
 public:
  Responder() = default;
  Responder(Responder&&) noexcept;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  /// Whether the client is still connected and the request not yet answered.
  bool alive() const;
  /// Answers with a whole response; the connection then serves its next request.
  void send(HttpResponse response);
  /// Starts a streamed response: no Content-Length, the connection closes
  /// when the stream ends. `on_gone` fires once if the client disconnects or
  /// falls too far behind first (not after end()).
  void start_stream(int status, std::vector<std::pair<std::string, std::string>> headers,
                    std::function<void()> on_gone);
  /// Appends to a started stream. False when the client is gone.
  bool write(std::string chunk);
  /// Ends a stream: the connection flushes and closes.
  void end();

 private:
  friend class Connection;
  explicit Responder(std::weak_ptr<Connection*> c) : conn_(std::move(c)) {}
  Connection* connection() const;
  std::weak_ptr<Connection*> conn_;
  bool streaming_ = false;
};

/// Called for each complete request, in order per connection: the next
/// request on a connection is not handed over before this one is answered.
using HttpHandler = std::function<void(HttpRequest&&, Responder)>;

class HttpServer {
 public:
  /// Binds `host:port` (port 0: any free port) and listens on `loop`. The
  /// server lives on the heap and deletes itself after close() completes.
  static Result<HttpServer*> listen(uv_loop_t* loop, const std::string& host, int port, HttpLimits limits,
                                    HttpHandler handler);

  /// The bound address, "host:port".
  std::string address() const;
  int port() const { return port_; }
  size_t connections() const { return connections_.size(); }

  /// Stops accepting new connections. Open ones are closed once their
  /// current request is answered (streams keep going until they end).
  void stop_accepting();
  /// Closes the listener and every connection (streams are cut), then
  /// deletes the server and calls `done`. Call once.
  void close(std::function<void()> done);

 private:
  friend class Connection;
  HttpServer(uv_loop_t* loop, HttpLimits limits, HttpHandler handler)
      : loop_(loop), limits_(limits), handler_(std::move(handler)) {}
  ~HttpServer() = default;
  static void on_connection(uv_stream_t* listener, int status) noexcept;
  void forget(Connection* c);
  void maybe_finish();

  uv_loop_t* loop_;
  HttpLimits limits_;
  HttpHandler handler_;
  uv_tcp_t listener_{};
  bool listening_ = false, closing_ = false, listener_closed_ = false;
  std::string host_;
  int port_ = 0;
  std::set<Connection*> connections_;  // each owns itself; removed from its close callback
  std::function<void()> on_closed_;
  char read_buf_[64 * 1024];  // every read lands here first (one loop thread)
};

}  // namespace hearth::ci
