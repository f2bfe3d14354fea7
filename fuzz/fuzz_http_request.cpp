// Any bytes from a client, in any chunking, over a real loopback socket to
// the HTTP server with small limits: every byte it sends back is a sequence
// of whole HTTP/1.1 responses, it always ends the connection once the
// client has, and it holds no body bytes afterwards.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/server.h"

using namespace hearth::http;

namespace {

struct Fixture {
  uv_loop_t loop{};
  HttpServer* server = nullptr;
  Fixture() {
    uv_loop_init(&loop);
    HttpLimits limits;
    limits.max_header_bytes = 512;
    limits.max_body_bytes = 2048;
    limits.max_peer_pending_body_bytes = 2048;
    limits.max_pending_body_bytes = 2048;
    limits.request_timeout = std::chrono::milliseconds(2000);
    auto s = HttpServer::listen(
        &loop, "127.0.0.1", 0, limits,
        [](HttpRequest&& req, Responder r) { r.send(HttpResponse{200, {}, std::to_string(req.body.size())}); },
        [](const HttpRequest& head) {
          HeadDecision d;
          if (head.path == "/refuse") d.status = 401, d.message = "refused at the head";
          return d;
        });
    if (!s) std::abort();
    server = *s;
  }
};

// Whether `out` is whole responses, each with a status line and a
// Content-Length-framed body.
bool whole_responses(const std::string& out) {
  size_t pos = 0;
  while (pos < out.size()) {
    if (out.compare(pos, 9, "HTTP/1.1 ") != 0) return false;
    size_t head_end = out.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) return false;
    if (out.compare(pos + 9, 3, "100") == 0) {  // 100 Continue has no body
      pos = head_end + 4;
      continue;
    }
    size_t cl = out.find("Content-Length: ", pos);
    if (cl == std::string::npos || cl > head_end) return false;
    pos = head_end + 4 + std::strtoul(out.c_str() + cl + 16, nullptr, 10);
  }
  return pos == out.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size < 1) return 0;
  size_t chunk = 1 + data[0] % 64;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(f.server->port()));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  std::string out;
  size_t sent = 0;
  bool shut = false, eof = false;
  for (int spins = 0; !eof && spins < 200000; ++spins) {
    uv_run(&f.loop, UV_RUN_NOWAIT);
    if (sent < in.size()) {
      ssize_t n = send(fd, in.data() + sent, std::min(chunk, in.size() - sent), MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != ENOTCONN) sent = in.size();  // the server closed
    } else if (!shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    else if (n == 0 || (errno != EAGAIN && errno != ENOTCONN)) eof = true;
  }
  close(fd);
  for (int i = 0; i < 100 && f.server->connections() > 0; ++i) uv_run(&f.loop, UV_RUN_NOWAIT);
  if (!eof) std::abort();                         // the server never ended the connection
  if (!whole_responses(out)) std::abort();        // a torn or malformed answer
  if (f.server->pending_body_bytes() != 0) std::abort();  // bytes still counted for a closed request
  return 0;
}
