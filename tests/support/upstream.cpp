#include "tests/support/upstream.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tests/support/parsed_request.h"

namespace hearth::testing {

namespace {

void run(const std::string& cmd) {
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

using Parsed = ParsedRequest;

UpstreamRequest request_of(const Parsed& r) {
  size_t q = r.url.find('?');
  return {r.method, r.url.substr(0, q), q == std::string::npos ? "" : r.url.substr(q + 1), r.body, r.headers};
}

// The answer to one request (see upstream.h).
std::string answer(const UpstreamRequest& r, const Upstream::Route& route) {
  const std::string& path = r.path;
  std::string auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
  if (auto routed = route ? route(r) : std::nullopt) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(routed->size()) +
           "\r\n\r\n" + *routed;
  }
  if (path.rfind("/bytes/", 0) == 0) {
    std::string body(std::stoul(path.substr(7)), 'x');
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  if (path.rfind("/status/", 0) == 0)
    return "HTTP/1.1 " + path.substr(8) + " Whatever\r\nContent-Length: 0\r\n\r\n";
  nlohmann::json echo = {
      {"method", r.method}, {"path", path}, {"query", r.query}, {"headers", r.headers}, {"body", r.body}};
  std::string body = echo.dump();
  if (path == "/chunked") {
    // The secret split across two chunks: redaction must hold bytes back.
    std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n";
    size_t cut = body.find(auth);
    cut = cut == std::string::npos || auth.empty() ? body.size() / 2 : cut + auth.size() / 2;
    for (std::string piece : {body.substr(0, cut), body.substr(cut)}) {
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      out += size + piece + "\r\n";
    }
    return out + "0\r\n\r\n";
  }
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-echo-authorization: " + auth +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TestCa TestCa::make(const std::filesystem::path& dir) {
  TestCa ca{(dir / "ca.pem").string(), (dir / "server.pem").string(), (dir / "server.key").string()};
  std::string d = dir.string();
  std::ofstream(dir / "ext.cnf") << "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\n";
  std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  run("openssl req -x509" + ec + "-keyout " + d + "/ca.key -out " + ca.ca_pem + " -days 2 -subj '/CN=Hearth Test CA'");
  run("openssl req" + ec + "-keyout " + ca.key_pem + " -out " + d + "/server.csr -subj /CN=127.0.0.1");
  run("openssl x509 -req -in " + d + "/server.csr -CA " + ca.ca_pem + " -CAkey " + d + "/ca.key -CAcreateserial -out " +
      ca.cert_pem + " -days 2 -extfile " + d + "/ext.cnf");
  return ca;
}

Upstream::Upstream(const TestCa* ca, const std::string& ip) : ip_(ip) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("upstream: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  if (ca) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, ca->cert_pem.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, ca->key_pem.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("upstream: bad test certificate");
    ssl_ctx_ = ctx;
  }
  acceptor_ = std::thread([this] {
    while (!stopping_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  });
}

Upstream::~Upstream() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
  for (int fd : fds_) ::close(fd);
  if (ssl_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

std::string Upstream::url() const {
  return std::string(ssl_ctx_ ? "https" : "http") + "://" + ip_ + ":" + std::to_string(port_);
}

std::vector<std::map<std::string, std::string>> Upstream::received() {
  std::vector<std::map<std::string, std::string>> headers;
  for (auto& r : requests_received()) headers.push_back(r.headers);
  return headers;
}

std::vector<UpstreamRequest> Upstream::requests_received() {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

void Upstream::set_route(Route route) {
  std::lock_guard<std::mutex> lock(mu_);
  route_ = std::move(route);
}

void Upstream::serve(int fd) {
  SSL* ssl = nullptr;
  if (ssl_ctx_) {
    ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      SSL_free(ssl);
      return;
    }
  }
  auto recv_some = [&](char* buf, size_t n) -> ssize_t {
    return ssl ? SSL_read(ssl, buf, static_cast<int>(n)) : ::recv(fd, buf, n, 0);
  };
  auto send_all = [&](const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ssl ? SSL_write(ssl, s.data() + off, static_cast<int>(s.size() - off))
                      : ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  };
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  Parsed req;
  parser.data = &req;
  std::string pending;
  char buf[65536];
  while (true) {
    ssize_t n = recv_some(buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    while (!pending.empty()) {
      size_t used = http_parser_execute(&parser, &request_parser_settings(), pending.data(), pending.size());
      pending.erase(0, used);
      if (HTTP_PARSER_ERRNO(&parser) == HPE_PAUSED) http_parser_pause(&parser, 0);
      else if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) goto done;
      if (!req.complete) break;
      ++requests_;
      UpstreamRequest got = request_of(req);
      Route route;
      {
        std::lock_guard<std::mutex> lock(mu_);
        received_.push_back(got);
        route = route_;
      }
      send_all(answer(got, route));
      bool close = req.headers.count("connection") && strcasecmp(req.headers["connection"].c_str(), "close") == 0;
      req = Parsed{};
      if (close) goto done;
    }
  }
done:
  if (ssl) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  ::shutdown(fd, SHUT_RDWR);  // the peer sees the end now; the fd is closed with the server
}

std::string while_loop_runs(uv_loop_t* loop, const std::function<std::string()>& work) {
  uv_async_t async;
  std::atomic<bool> done{false};
  uv_async_init(loop, &async, [](uv_async_t* a) { uv_stop(a->loop); });
  std::string result;
  std::thread t([&] {
    result = work();
    done = true;
    uv_async_send(&async);
  });
  while (!done) uv_run(loop, UV_RUN_DEFAULT);
  t.join();
  uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return result;
}

std::string raw_exchange(const std::string& path, const std::string& request, bool half_close) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

std::string header_of(const std::string& response, const std::string& name) {
  size_t end = response.find("\r\n\r\n");
  size_t pos = response.find("\r\n");
  while (pos != std::string::npos && pos < end) {
    size_t next = response.find("\r\n", pos + 2);
    std::string line = response.substr(pos + 2, next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos && colon == name.size() && strncasecmp(line.c_str(), name.c_str(), colon) == 0) {
      std::string v = line.substr(colon + 1);
      return v.erase(0, v.find_first_not_of(' '));
    }
    pos = next;
  }
  return "";
}

std::string body_of(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) return "";
  std::string rest = response.substr(end + 4);
  if (strcasecmp(header_of(response, "transfer-encoding").c_str(), "chunked") != 0) return rest;
  std::string body;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) break;
    size_t n = std::strtoul(rest.substr(pos, eol - pos).c_str(), nullptr, 16);
    if (n == 0) break;
    body += rest.substr(eol + 2, n);
    pos = eol + 2 + n + 2;
  }
  return body;
}

}  // namespace hearth::testing
