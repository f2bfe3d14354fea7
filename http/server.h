// A small HTTP/1.1 server on a libuv loop, for `hearth serve`. Requests are
// read by RequestReader (request_reader.h: http_parser, the limits on the
// request line + headers and on the body, chunked request bodies, one
// request at a time); this file adds what a server exposed to the internet
// needs around it: keep-alive, pipelining answered in order, deadlines for
// headers and for whole requests, a cap on connections shared fairly
// between peers, a bound on the request bytes held before the handler sees
// them (per peer and in total), a look at each request's head before its
// body is read, and streamed responses (SSE) with a bound on how far a
// reader may fall behind. Knows nothing of webhooks.
//
// Peers are client IP addresses (IPv6: the /64 prefix). When every
// connection slot is taken, a new connection takes the slot of an idle or
// unfinished connection of the peer holding the most, as long as that peer
// holds more than the newcomer's peer would: one address opening a
// thousand slow connections cannot lock another address out.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::http {

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
  /// Open connections at most. Beyond it a newcomer evicts a waiting
  /// connection of the peer with the most (see above), or is answered 503.
  size_t max_connections = 1024;
  /// From a connection's start (or a request's first byte) to the end of the
  /// request's headers; a slower client is answered 408 (closed silently if
  /// it sent nothing).
  std::chrono::milliseconds header_timeout{10000};
  /// Request body bytes held for requests not yet handed to the handler
  /// (not yet authenticated), from one peer: a request that would pass it
  /// is answered 429 and closed. Raised to max_body_bytes if below it.
  size_t max_peer_pending_body_bytes = 32 * 1024 * 1024;
  /// The same, over all peers: when a request would pass it, the largest
  /// unfinished body held is refused (429) to make room.
  size_t max_pending_body_bytes = 64 * 1024 * 1024;
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
  /// What the head handler attached to see the body (see HeadHandler).
  std::shared_ptr<class BodyTap> tap;
  /// The header's value, or "" when absent. `name` in lower case.
  const std::string& header(const std::string& name) const;
};

/// Sees a request's body as it arrives, chunk by chunk, before the handler
/// has the request: a MAC computed as the bytes stream needs no second pass.
class BodyTap {
 public:
  virtual ~BodyTap() = default;
  virtual void update(std::string_view chunk) = 0;
};

/// What to do with a request whose headers are complete: `status` non-zero
/// refuses it at once with `message` (its body is never read or held);
/// otherwise `tap` (may be null) sees its body and rides on the request.
struct HeadDecision {
  int status = 0;
  std::string message;
  std::shared_ptr<BodyTap> tap;
};
/// Called on the loop once per request, when its headers are complete
/// (`head` has no body yet).
using HeadHandler = std::function<HeadDecision(const HttpRequest& head)>;

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
                                    HttpHandler handler, HeadHandler head_handler = nullptr);

  /// The bound address, "host:port".
  std::string address() const;
  int port() const { return port_; }
  size_t connections() const { return connections_.size(); }
  /// Body bytes held for requests not yet handed to the handler.
  size_t pending_body_bytes() const { return pending_body_bytes_; }

  /// Stops accepting new connections. Open ones are closed once their
  /// current request is answered (streams keep going until they end).
  void stop_accepting();
  /// Closes the listener and every connection (streams are cut), then
  /// deletes the server and calls `done`. Call once.
  void close(std::function<void()> done);

 private:
  friend class Connection;
  HttpServer(uv_loop_t* loop, HttpLimits limits, HttpHandler handler, HeadHandler head_handler);
  ~HttpServer() = default;
  static void on_connection(uv_stream_t* listener, int status) noexcept;
  void forget(Connection* c);
  void maybe_finish();

  // Peer budgets (server_peers.cpp).
  struct Peer {
    size_t connections = 0;         // open and not closing
    size_t pending_body_bytes = 0;  // held by its requests not yet handed over
  };
  /// Whether a new connection from `peer` may open, evicting a waiting
  /// connection of the peer with the most when every slot is taken.
  bool make_room_for(const std::string& peer);
  /// Accounts `n` more body bytes for `c`; false when the request must be
  /// refused (its peer's budget); may refuse the largest other request to
  /// keep the total within its budget.
  bool hold_body_bytes(Connection* c, size_t n);
  void release_body_bytes(const std::string& peer, size_t n);
  void peer_opened(const std::string& peer) {
    ++peers_[peer].connections;
    ++live_connections_;
  }
  void peer_closed(const std::string& peer);

  uv_loop_t* loop_;
  HttpLimits limits_;
  HttpHandler handler_;
  HeadHandler head_handler_;
  std::unordered_map<std::string, Peer> peers_;  // only peers with an open connection
  size_t live_connections_ = 0;                  // in connections_ and not closing
  uint64_t accepted_ = 0;                        // connections accepted so far
  size_t pending_body_bytes_ = 0;
  uv_tcp_t listener_{};
  bool listening_ = false, closing_ = false, listener_closed_ = false;
  std::string host_;
  int port_ = 0;
  std::set<Connection*> connections_;  // each owns itself; removed from its close callback
  std::function<void()> on_closed_;
  char read_buf_[64 * 1024];  // every read lands here first (one loop thread)
};

}  // namespace hearth::http
