// Test helpers for the proxy suites: a stand-in upstream on 127.0.0.1 (plain
// HTTP, or TLS with a CA made for the test by the `openssl` command), and a
// raw client that talks to a Unix socket from a thread while the test's loop
// runs.
//
// The upstream echoes each request as JSON: {"method", "path", "query",
// "headers": {lower-case name: value}, "body"}, with status 200, and adds
// the request's Authorization to a response header `x-echo-authorization`.
// A few paths behave differently:
//   /bytes/N   N bytes of 'x' (Content-Length)
//   /chunked   the echo, sent chunked in small pieces with the
//              Authorization header value split across two chunks
//   /status/N  an empty response with status N
// A test can answer requests of its own instead (set_route): a stand-in for
// an API that a real client program talks to.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <uv.h>

namespace hearth::testing {

/// A CA and a server certificate for 127.0.0.1, 127.0.0.2 and localhost, made with
/// the `openssl` command in `dir`.
struct TestCa {
  std::string ca_pem, cert_pem, key_pem;  // paths
  static TestCa make(const std::filesystem::path& dir);
};

/// One request as the upstream received it (header names lower-case).
struct UpstreamRequest {
  std::string method, path, query, body;
  std::map<std::string, std::string> headers;
};

class Upstream {
 public:
  /// The body of a 200 JSON answer to `request`, or nullopt to answer as
  /// described at the top of this file. Called on the upstream's threads.
  using Route = std::function<std::optional<std::string>(const UpstreamRequest& request)>;

  /// Listens on `ip` (a loopback address, a free port) at once; TLS when
  /// `ca` is given.
  explicit Upstream(const TestCa* ca = nullptr, const std::string& ip = "127.0.0.1");
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  int port() const { return port_; }
  std::string url() const;
  int requests() const { return requests_; }
  /// The headers (lower-case names) of every request received, in order.
  std::vector<std::map<std::string, std::string>> received();
  /// Every request received, in order.
  std::vector<UpstreamRequest> requests_received();
  /// Answers the requests `route` accepts from now on.
  void set_route(Route route);

 private:
  void serve(int fd);
  int listen_fd_ = -1;
  int port_ = 0;
  std::string ip_;
  std::vector<UpstreamRequest> received_;
  Route route_;
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  std::atomic<int> requests_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  std::vector<int> fds_;
  std::mutex mu_;
};

/// Runs `work` on a thread while `loop` runs on this one; returns its result
/// once it is done (the loop is stopped then; its handles stay).
std::string while_loop_runs(uv_loop_t* loop, const std::function<std::string()>& work);

/// Connects to the Unix socket at `path`, writes `request` (then, with
/// `half_close`, shuts down writing) and reads until the server closes or
/// 10 s pass. Returns everything read.
std::string raw_exchange(const std::string& path, const std::string& request, bool half_close = false);

/// The status code of a raw HTTP response ("HTTP/1.1 403 ..." -> 403), or 0.
int status_of(const std::string& response);
/// The body of a raw response (after the blank line; chunked encoding removed).
std::string body_of(const std::string& response);
/// A header's value in a raw response (name case-insensitive), or "".
std::string header_of(const std::string& response, const std::string& name);

}  // namespace hearth::testing
