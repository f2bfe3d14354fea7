// Private to server*.cpp: one client connection of an HttpServer.
#pragma once

#include "http/request_reader.h"
#include "http/server.h"

namespace hearth::http {

// One client connection. Owns its TCP and timer handles; deletes itself once
// both have closed, after telling the server. Responders reach it through a
// weak pointer that dies when it starts closing.
class Connection final : RequestReader::Hooks {
 public:
  explicit Connection(HttpServer& server)
      : server_(server), reader_({server.limits_.max_header_bytes, server.limits_.max_body_bytes, false}, *this) {
    uv_tcp_init(server_.loop_, &tcp_);
    uv_timer_init(server_.loop_, &timer_);
    tcp_.data = this;
    timer_.data = this;
  }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  uv_tcp_t* tcp() { return &tcp_; }

  /// `peer` and `key` from peer_of()/peer_key_of(); counted as one of the
  /// key's connections until it starts closing.
  void start(std::string peer, std::string key, bool over_limit, uint64_t seq);

  // --- for Responder ---
  bool in_flight() const { return in_flight_ && !closing_; }
  void send_response(HttpResponse r);
  void start_stream(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                    std::function<void()> on_gone);
  bool write_stream(std::string chunk);
  void end_stream();
  std::weak_ptr<Connection*> handle() const { return self_; }

  // --- for HttpServer ---
  void close_now();
  /// Open, not closing, with no request handed to the handler or streaming:
  /// a connection that may be evicted or refused to make room.
  bool waiting() const { return !in_flight_ && !streaming_ && !draining_ && !closing_; }
  const std::string& peer_key() const { return peer_key_; }
  uint64_t seq() const { return seq_; }
  /// Body bytes of the current request counted against the budgets.
  size_t held() const { return held_; }
  /// Answers `status` now and closes (the request in progress is dropped).
  void refuse(int status, const std::string& message) { respond_error(status, message); }
  // Closes an idle connection at once; a busy one after its answer.
  void stop() {
    if (!in_flight_ && !streaming_ && !reader_.in_request()) shutdown_and_close();
  }

 private:
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* c = static_cast<Connection*>(h->data);
    *buf = uv_buf_init(c->server_.read_buf_, sizeof c->server_.read_buf_);
  }
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void on_timer(uv_timer_t* t) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;

  // RequestReader::Hooks
  void on_request_begin() override;
  Refusal on_head(Request& request) override;
  void on_continue() override { write("HTTP/1.1 100 Continue\r\n\r\n"); }
  Refusal on_body(std::string_view chunk) override;

  void arm(std::chrono::milliseconds ms) {
    uv_timer_start(&timer_, &Connection::on_timer, static_cast<uint64_t>(ms.count()), 0);
  }
  void parse_pending();
  void dispatch();
  void respond_error(int status, const std::string& message);
  void write(std::string data);
  void shutdown_and_close();
  void release();  // stops counting against the peer's budgets (once)
  void release_held();
  bool closing_after_answer() const { return !keep_alive_ || eof_ || !server_.listening_ || server_.closing_; }

  HttpServer& server_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_{};
  RequestReader reader_;
  std::shared_ptr<Connection*> self_ = std::make_shared<Connection*>(this);
  std::string peer_;
  std::string peer_key_;   // the budget it counts against (IP, or IPv6 /64)
  uint64_t seq_ = 0;       // order of acceptance: the oldest is evicted first
  size_t held_ = 0;        // body bytes of the current request held against the budgets
  uint64_t request_started_ = 0;  // uv_now() at the request's first byte
  bool counted_ = false;
  HttpRequest req_;  // the head, from on_head; the body joins it at dispatch
  bool in_flight_ = false, streaming_ = false, parsing_ = false;
  bool keep_alive_ = true, eof_ = false, draining_ = false, closing_ = false, reading_ = true;
  std::function<void()> on_gone_;
  int open_handles_ = 2;
};

}  // namespace hearth::http
