// A plain HTTP/1.1 client over one TCP connection to 127.0.0.1, for the
// suites that test `hearth serve` from outside: it writes raw bytes (so a
// test can send what no library would) and reads answers with a deadline
// that fails loudly.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

namespace hearth::testing {

/// One answer as the client read it.
struct HttpResponse {
  int status = 0;  // 0: the connection closed without an answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json as_json() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " + body);
    return j;
  }
};

/// The text of a request; a body (or a POST) gets its Content-Length.
inline std::string request_text(const std::string& method, const std::string& path,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::string& body) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

/// One TCP connection to `port` on 127.0.0.1, from `source` (a loopback
/// address of the test's choosing, so the server sees distinct peers). Every
/// read waits at most its timeout and then fails the test.
class HttpClient {
 public:
  using Clock = std::chrono::steady_clock;

  explicit HttpClient(int port, const char* source = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    if (source) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      inet_pton(AF_INET, source, &from.sin_addr);
      BOOST_REQUIRE_MESSAGE(bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0,
                            std::string("cannot bind to ") + source);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~HttpClient() {
    if (fd_ >= 0) close(fd_);
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return connected_; }

  /// Sends what the server takes; false once it stops taking (closed,
  /// reset: after a 413 or 431, what it answered is still readable).
  bool send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  /// Reads until `pred(received)` holds; false at EOF first. Fails the test
  /// after `timeout`.
  template <class Pred>
  bool read_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = Clock::now() + timeout;
    while (!pred(in_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      BOOST_REQUIRE_MESSAGE(left > 0, "no answer in time; received so far:\n" + in_);
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return pred(in_);
      in_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  /// The next whole answer (Content-Length framed; to EOF without it), or
  /// status 0 when the server closes the connection without one.
  HttpResponse response_or_close() {
    size_t head_end = 0;
    HttpResponse r;
    if (!read_until([&](const std::string& s) { return (head_end = s.find("\r\n\r\n")) != std::string::npos; }))
      return r;
    std::string head = in_.substr(0, head_end);
    r.status = std::atoi(head.substr(9, 3).c_str());
    for (size_t pos = head.find("\r\n"); pos != std::string::npos && pos < head.size();) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = next;
    }
    size_t body_at = head_end + 4;
    if (r.headers.count("content-length")) {
      size_t len = std::stoul(r.headers["content-length"]);
      read_until([&](const std::string& s) { return s.size() >= body_at + len; });
      r.body = in_.substr(body_at, len);
      in_.erase(0, body_at + len);
    } else {
      read_until([](const std::string&) { return false; });
      r.body = in_.substr(body_at);
      in_.clear();
    }
    return r;
  }

  /// The next whole answer; the test stops if the server closes first.
  HttpResponse response() {
    auto r = response_or_close();
    BOOST_REQUIRE_MESSAGE(r.status != 0, "the connection closed without an answer; received:\n" + in_);
    return r;
  }

  /// Whether the server has closed the connection (EOF within 5 s).
  bool closed_by_server() {
    char c;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    return recv(fd_, &c, 1, 0) <= 0;
  }

  /// Everything read and not yet taken by response().
  std::string& received() { return in_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string in_;
};

}  // namespace hearth::testing
