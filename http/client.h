// HTTP on the libuv loop through libcurl's multi-socket interface.
//
// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION → one
// uv_poll_t per socket) and when to wake it (CURLMOPT_TIMERFUNCTION → one
// uv_timer_t); the loop tells libcurl what happened with
// curl_multi_socket_action. No threads, no blocking: any number of
// transfers share the loop and libcurl's connection pool. TLS is the system
// libcurl's (system CA store).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::http {

struct ClientRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string body;
  /// Called inside start() with the transfer's CURL* handle, after the
  /// options above are set: for what this interface does not name (TLS
  /// trust, HEAD, a body on PUT/PATCH, pausing). Used by proxy/.
  std::function<void(void* curl_easy)> configure;
};

/// Response headers, names lower-cased.
using HttpHeaders = std::multimap<std::string, std::string>;

/// How a transfer ended. `curl_code` 0 means the whole body arrived (any
/// HTTP status); otherwise `error` says what failed in transport.
struct HttpResult {
  int curl_code = 0;
  std::string error;
  int status = 0;  // 0 when no status line arrived
  bool ok() const { return curl_code == 0; }
};

/// Callbacks of one transfer, on the loop thread. A callback may start or
/// cancel transfers (its own included).
struct HttpHandlers {
  /// Once, when the status line and headers have arrived (before any body).
  std::function<void(int status, const HttpHeaders& headers)> on_headers;
  /// Body bytes as they arrive (chunked encoding already removed).
  std::function<void(std::string_view bytes)> on_body;
  /// Exactly once unless the transfer is cancelled first.
  std::function<void(HttpResult result)> on_done;
};

using TransferId = uint64_t;

/// Owns a curl multi handle and its uv handles. Lives on the heap; close()
/// aborts every transfer (without callbacks) and deletes the object once its
/// handles have closed on the loop.
class HttpClient {
 public:
  static HttpClient* create(uv_loop_t* loop);
  /// Starts a transfer. Never calls a handler from inside start().
  TransferId start(ClientRequest request, HttpHandlers handlers);
  /// Aborts a transfer; none of its handlers fires afterwards. Returns false
  /// if it already finished.
  bool cancel(TransferId id);
  /// Aborts everything and releases the client (see above). Safe from
  /// inside a handler: the teardown then waits until libcurl returns.
  void close();
  size_t active() const { return transfers_.size(); }
  uv_loop_t* loop() const { return loop_; }
  bool closing() const { return closing_; }

  struct Transfer;
  struct Socket;

 private:
  explicit HttpClient(uv_loop_t* loop);
  ~HttpClient();
  void action(int fd, int events);
  void drain_messages();
  void flush_pending();
  void remove(Transfer* t);
  void maybe_delete();
  void teardown();
  static void close_socket(Socket* s);

  static int on_socket(void* easy, int fd, int what, void* userp, void* socketp) noexcept;
  static int on_timer(void* multi, long timeout_ms, void* userp) noexcept;
  static void on_timeout(uv_timer_t* t) noexcept;
  static void on_poll(uv_poll_t* p, int status, int events) noexcept;

  uv_loop_t* loop_;
  void* multi_ = nullptr;  // CURLM*
  uv_timer_t timer_{};
  std::map<TransferId, std::unique_ptr<Transfer>> transfers_;
  std::set<Socket*> sockets_;          // polls open for libcurl's sockets
  std::vector<Transfer*> pending_;  // started while libcurl was calling us
  TransferId next_id_ = 1;
  int depth_ = 0;           // > 0 while inside curl_multi_socket_action
  int open_handles_ = 0;    // uv handles not yet closed (timer + polls)
  bool closing_ = false;
};

}  // namespace hearth::http
