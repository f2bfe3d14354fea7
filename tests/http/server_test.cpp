// http::HttpServer answering over a real loopback socket: an answer larger
// than the socket's buffer (written partly at once, the rest queued) arrives
// whole and before the answer to a request pipelined behind it, and whole to
// a client that has already ended its side of the connection.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "tests/support/loop.h"

using hearth::testing::LoopFixture;

namespace {

// Sends `request` to 127.0.0.1:`port` (then ends its side if `half_close`),
// and reads until the server closes (no sleeps: blocking reads).
std::string exchange(int port, const std::string& request, bool half_close) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, 0);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    if (half_close) ::shutdown(fd, SHUT_WR);
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_server)

struct BigAnswers : LoopFixture {
  std::string big = std::string(8 * 1024 * 1024, '\0');
  hearth::http::HttpServer* server = nullptr;
  BigAnswers() {
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    auto s = hearth::http::HttpServer::listen(
        &loop, "127.0.0.1", 0, {}, [this](hearth::http::HttpRequest&& req, hearth::http::Responder r) {
          r.send({200, {}, req.path == "/big" ? big : std::string("small")});
        });
    BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.message()));
    server = *s;
  }
  ~BigAnswers() {
    bool closed = false;
    server->close([&] { closed = true; });
    run_until([&] { return closed; });
  }
  std::string exchange_on_loop(const std::string& request, bool half_close) {
    std::string got;
    std::atomic<bool> done{false};
    std::thread client([&] {
      got = exchange(server->port(), request, half_close);
      done = true;
    });
    run_until([&] { return done.load(); });
    client.join();
    return got;
  }
  // `got` starts with a 200 whose body is `big`; returns what follows it.
  std::string after_big(const std::string& got) {
    size_t head = got.find("\r\n\r\n");
    BOOST_REQUIRE(head != std::string::npos);
    BOOST_TEST(got.rfind("HTTP/1.1 200 OK", 0) == 0);
    BOOST_REQUIRE_MESSAGE(got.size() >= head + 4 + big.size(),
                          "the big answer was cut: " << got.size() - head - 4 << " of " << big.size() << " bytes");
    BOOST_TEST((got.compare(head + 4, big.size(), big) == 0), "the big answer's body came back changed");
    return got.substr(head + 4 + big.size());
  }
};

BOOST_FIXTURE_TEST_CASE(an_answer_larger_than_the_socket_buffer_arrives_whole_and_in_order, BigAnswers) {
  std::string got = exchange_on_loop(
      "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false);
  std::string rest = after_big(got);
  BOOST_TEST(rest.rfind("HTTP/1.1 200 OK", 0) == 0, "the second answer did not follow the first: " << rest.substr(0, 60));
  BOOST_TEST(rest.size() >= 5u);
  BOOST_TEST(rest.substr(rest.size() - 5) == "small");
}

BOOST_FIXTURE_TEST_CASE(a_client_that_ended_its_side_still_gets_the_whole_answer, BigAnswers) {
  std::string got = exchange_on_loop("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", true);
  BOOST_TEST(after_big(got).empty());
}

BOOST_AUTO_TEST_SUITE_END()
