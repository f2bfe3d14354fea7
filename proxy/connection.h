// Private to proxy/: the server's state and one client connection.
// connection.cpp reads requests and writes answers; forward.cpp sends a
// request to its upstream and streams the answer back; tunnel.cpp serves
// CONNECT on the egress socket; server.cpp owns the listeners.
#pragma once

#include <uv.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/client.h"
#include "http/request_reader.h"
#include "proxy/server.h"
#include "sandbox/splice.h"

namespace hearth::proxy {

class Conn;

/// Rate-limit state of one proxy for one step attempt.
struct ProxyState {
  std::optional<TokenBucket> bucket;                    // the proxy's `rate`
  std::vector<std::optional<TokenBucket>> rule_buckets;  // per allow rule with a `rate`
  uint64_t forwarded = 0;                               // requests sent upstream (max-requests)
};

class ServerImpl final : public ProxyServer {
 public:
  ServerImpl(uv_loop_t* loop, ProxyServerOptions o) : loop_(loop), opts_(std::move(o)) {}
  Status listen();

  const std::vector<sandbox::LoopbackForward>& forwards() const override { return forwards_; }
  const std::vector<std::string>& environment() const override { return env_; }
  size_t connections() const override { return conns_.size(); }
  void close(std::function<void()> closed) override;

  // --- for Conn ---
  uv_loop_t* loop() const { return loop_; }
  const ProxyServerOptions& opts() const { return opts_; }
  http::HttpClient* http() const { return http_; }
  ProxyState& state(int proxy) { return state_[static_cast<size_t>(proxy)]; }
  std::string redact(std::string_view s) const { return opts_.secrets ? opts_.secrets->redact(s) : std::string(s); }
  void emit(ProxyEvent e) const;
  void forget(Conn* c);
  char read_buf[64 * 1024];  // every read lands here first (one loop thread)

 private:
  struct Endpoint {
    uv_pipe_t pipe{};
    ServerImpl* server = nullptr;
    int proxy = -1;  // index in opts_.proxies; -1: the egress proxy
    std::string path;
  };
  static void on_connection(uv_stream_t* s, int status) noexcept;
  Status add_endpoint(int proxy, const std::string& path, uint16_t port, const std::string& env);
  void maybe_free();

  uv_loop_t* loop_;
  ProxyServerOptions opts_;
  http::HttpClient* http_ = nullptr;
  std::vector<Endpoint*> endpoints_;
  std::set<Conn*> conns_;
  std::vector<ProxyState> state_;
  std::vector<sandbox::LoopbackForward> forwards_;
  std::vector<std::string> env_;
  int open_endpoints_ = 0;
  bool closing_ = false;
  std::function<void()> closed_;
};

/// One connection from the sandbox (through its loopback forward). Owns its
/// handles (the client pipe, a timer, for CONNECT a TCP handle) and deletes
/// itself once all have closed and no getaddrinfo is pending.
class Conn final : http::RequestReader::Hooks {
 public:
  Conn(ServerImpl& server, int proxy);
  uv_stream_t* client() { return reinterpret_cast<uv_stream_t*>(&client_); }
  void start(bool over_limit);
  void close_now();

 private:
  // connection.cpp: reading requests, writing answers
  void on_request_begin() override;
  void on_continue() override { write("HTTP/1.1 100 Continue\r\n\r\n"); }
  /// The request being read or answered (the reader's).
  http::Request& req() { return reader_.request(); }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void on_timer(uv_timer_t* t) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;
  void parse_pending();
  /// Hands the request read on; `after_headers` (an upgrade) is what followed its head.
  void dispatch(std::optional<std::string> after_headers);
  void write(std::string data);
  void arm(std::chrono::milliseconds ms);
  void start_reading();
  /// Answers with a whole response (JSON body) and records the event.
  void refuse(int status, const std::string& decision, const std::string& rule, nlohmann::json body,
              std::vector<std::pair<std::string, std::string>> extra = {});
  void send_whole(int status, const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body);
  /// The current request is answered: emit its event, then the next one.
  void finish_request();
  void shutdown_and_close();
  void emit();
  void maybe_delete();

  // forward.cpp: one request to its upstream
  void forward();
  /// Method-override headers: each overridden method is decided as well; a
  /// refusal replaces `v`. False when a 400 was sent (not a method).
  bool check_overrides(const StepProxy& sp, const RequestPath& path, Verdict& v);
  void start_transfer(const StepProxy& sp, const std::string& url, int rule);
  void on_upstream_headers(int status, const http::HttpHeaders& headers);
  void on_upstream_body(std::string_view bytes);
  void on_upstream_done(const http::HttpResult& r);
  void write_body(std::string_view bytes);
  void on_written();  // a write completed: resume a paused transfer

  // tunnel.cpp: CONNECT on the egress socket
  void tunnel(std::string after_headers);
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  static void on_target_connected(uv_connect_t* req, int status) noexcept;
  void start_splice();

  friend struct WriteReq;
  ServerImpl& server_;
  int proxy_;  // index in the options' proxies; -1: egress
  uv_pipe_t client_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_{};
  int handles_ = 2;

  // reading
  http::RequestReader reader_;
  bool busy_ = false, parsing_ = false, reading_ = false;
  bool keep_alive_ = true, eof_ = false, draining_ = false, closing_ = false;

  // the current request's answer
  ProxyEvent ev_;
  bool ev_pending_ = false;
  std::chrono::steady_clock::time_point began_;
  std::optional<http::TransferId> transfer_;
  void* easy_ = nullptr;  // CURL* of the transfer (for pausing)
  bool in_upstream_cb_ = false;  // inside an HttpClient handler: cancelling waits for maybe_delete
  bool paused_ = false, head_sent_ = false, chunked_ = false, body_allowed_ = true;
  std::string upstream_body_;  // what libcurl sends (must outlive the transfer)
  std::optional<commands::StreamRedactor> redactor_;

  // CONNECT
  uv_tcp_t target_{};
  uv_getaddrinfo_t resolve_{};
  uv_connect_t connect_{};
  bool resolving_ = false;   // a getaddrinfo is pending (the Conn must outlive it)
  bool connecting_ = false;  // resolving or connecting to the target; the timer bounds it
  std::string tunnel_first_;  // client bytes that came after the CONNECT head
  sandbox::Splice splice_;
};

/// "application/json" error bodies: {"error": ..., "proxy": ..., ...}.
nlohmann::json problem(const std::string& error, const std::string& proxy, const std::string& reason);

}  // namespace hearth::proxy
