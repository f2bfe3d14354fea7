// The engine-side proxy over its real Unix sockets, against stand-in
// upstreams on 127.0.0.1 (plain HTTP, and TLS with a CA made for the test):
// policy, rates, credentials that reach the upstream but never come back,
// CONNECT, hostile and malformed requests, events.
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "proxy/server.h"
#include "tests/proxy/fixture.h"

using namespace hearth::proxy;
using namespace hearth::testing;
using nlohmann::json;

namespace {

const char* kTracker = R"(
[proxies.tracker]
upstream = "UPSTREAM/api"
headers = { Authorization = "Bearer ${{ secrets.GH_TOKEN }}" }
allow = [ { method = "GET", path = "/**" },
          { method = "POST", path = "/issues/*/comments", body-max = "16KiB" },
          { method = "POST", path = "/labels", body = '^\{"name":"[a-z-]+"\}$' } ]
deny  = [ { path = "/admin/**" }, { body = "(?i)drop table" } ]
)";

json echo_of(const std::string& response) { return json::parse(body_of(response), nullptr, false); }

void refused_with(const std::string& response, int status, const std::string& rule) {
  BOOST_TEST(status_of(response) == status, response);
  BOOST_TEST(header_of(response, "content-type") == "application/json");
  json body = json::parse(body_of(response), nullptr, false);
  BOOST_TEST(body.value("rule", "") == rule, response);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_server)

BOOST_AUTO_TEST_CASE(the_credential_reaches_the_upstream_but_the_sandbox_sees_it_masked) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.request("github", "GET", "/repos/o/r?per_page=5");
  BOOST_TEST(status_of(r) == 200, r);
  // The upstream got the real token ...
  BOOST_REQUIRE(up.received().size() == 1u);
  BOOST_TEST(up.received()[0]["authorization"] == "Bearer " + kToken);
  // ... and everything that came back has it masked, in headers and body.
  BOOST_TEST(r.find(kToken) == std::string::npos);
  BOOST_TEST(header_of(r, "x-echo-authorization") == "Bearer ***");
  json echo = echo_of(r);
  BOOST_TEST(echo["headers"]["authorization"] == "Bearer ***");
  BOOST_TEST(echo["path"] == "/repos/o/r");
  BOOST_TEST(echo["query"] == "per_page=5");
  BOOST_TEST(echo["method"] == "GET");
  BOOST_REQUIRE(f.events.size() == 1u);
  const ProxyEvent& e = f.events[0];
  BOOST_TEST(e.proxy == "github");
  BOOST_TEST(e.method == "GET");
  BOOST_TEST(e.path == "/repos/o/r");
  BOOST_TEST(e.status == 200);
  BOOST_TEST(e.decision == "allowed");
  BOOST_TEST(e.rule == "policy read-only");
  BOOST_TEST(e.response_bytes == body_of(r).size());
  for (auto* s : {&e.proxy, &e.method, &e.path, &e.decision, &e.rule}) BOOST_TEST(s->find(kToken) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_header_the_client_sends_is_replaced_by_the_configured_one) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.request("github", "GET", "/user", "", "authorization: Bearer mine\r\nX-Trace: 7\r\nConnection: X-Trace\r\n");
  BOOST_TEST(status_of(r) == 200);
  auto got = up.received().at(0);
  BOOST_TEST(got["authorization"] == "Bearer " + kToken);
  BOOST_TEST(got.count("x-trace") == 0u);  // named hop-by-hop by the client's Connection header
  BOOST_TEST(got["host"] == "127.0.0.1:" + std::to_string(up.port()));
}

BOOST_AUTO_TEST_CASE(a_split_secret_in_a_chunked_answer_is_still_masked) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.request("github", "GET", "/chunked");
  BOOST_TEST(status_of(r) == 200);
  BOOST_TEST(r.find(kToken) == std::string::npos);
  BOOST_TEST(r.find(kToken.substr(0, 12)) == std::string::npos);
  BOOST_TEST(echo_of(r)["headers"]["authorization"] == "Bearer ***");
}

BOOST_AUTO_TEST_CASE(read_only_refuses_other_methods_naming_the_preset) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.request("github", "POST", "/repos/o/r/issues", "{}");
  refused_with(r, 403, "policy read-only");
  BOOST_TEST(echo_of(r)["reason"] == "POST /repos/o/r/issues matches no allow rule (this proxy allows: GET, HEAD on /**)");
  auto head = f.request("github", "HEAD", "/bytes/10");
  BOOST_TEST(status_of(head) == 200);
  BOOST_TEST(header_of(head, "content-length") == "10");
  BOOST_TEST(body_of(head).empty());
  BOOST_TEST(up.requests() == 1);
  BOOST_REQUIRE(f.events.size() == 2u);
  BOOST_TEST(f.events[0].decision == "denied");
  BOOST_TEST(f.events[0].status == 403);
  BOOST_TEST(f.events[0].rule == "policy read-only");
}

BOOST_AUTO_TEST_CASE(method_and_path_rules) {
  Upstream up;
  ProxyFixture f;
  f.start(kTracker, up.url());
  auto ok = f.request("tracker", "GET", "/issues/1");
  BOOST_TEST(status_of(ok) == 200);
  BOOST_TEST(echo_of(ok)["path"] == "/api/issues/1");  // under the upstream's path
  refused_with(f.request("tracker", "DELETE", "/issues/1"), 403, "no allow rule");
  BOOST_TEST(status_of(f.request("tracker", "POST", "/issues/7/comments", "hi")) == 200);
  refused_with(f.request("tracker", "POST", "/issues/7/8/comments", "hi"), 403, "no allow rule");
  auto admin = f.request("tracker", "GET", "/admin/users");
  refused_with(admin, 403, "deny[0]");
  BOOST_TEST(echo_of(admin)["rule_at"] == "8:11");
  // Escapes of plain characters are decoded before matching.
  refused_with(f.request("tracker", "GET", "/%61dmin/users"), 403, "deny[0]");
  // Dot segments are refused outright, however they are written.
  for (const char* p : {"/issues/../admin/users", "/issues/%2E%2E/admin/users", "/issues//x"})
    BOOST_TEST(status_of(f.request("tracker", "GET", p)) == 400, p);
  BOOST_TEST(up.requests() == 2);
}

BOOST_AUTO_TEST_CASE(body_size_and_body_pattern_rules) {
  Upstream up;
  ProxyFixture f;
  f.start(kTracker, up.url());
  std::string big(16 * 1024 + 1, 'a');
  BOOST_TEST(status_of(f.request("tracker", "POST", "/issues/1/comments", std::string(16 * 1024, 'a'))) == 200);
  auto r = f.request("tracker", "POST", "/issues/1/comments", big);
  refused_with(r, 403, "allow[1]");
  BOOST_TEST(echo_of(r)["reason"].get<std::string>().find("allows at most 16384") != std::string::npos);
  auto label = f.request("tracker", "POST", "/labels", R"({"name":"bug"})", "Content-Type: application/json\r\n");
  BOOST_TEST(status_of(label) == 200);
  BOOST_TEST(echo_of(label)["body"] == R"({"name":"bug"})");
  BOOST_TEST(echo_of(label)["headers"]["content-type"] == "application/json");
  refused_with(f.request("tracker", "POST", "/labels", R"({"name":"Bug; rm -rf"})"), 403, "allow[2]");
  refused_with(f.request("tracker", "POST", "/issues/1/comments", "please DROP TABLE users"), 403, "deny[1]");
  BOOST_TEST(up.requests() == 2);
}

BOOST_AUTO_TEST_CASE(over_the_rate_the_answer_is_429_with_retry_after) {
  Upstream up;
  ProxyFixture f;
  f.start(std::string(kGithub) + "rate = \"2/min\"\n", up.url());
  BOOST_TEST(status_of(f.request("github", "GET", "/a")) == 200);
  BOOST_TEST(status_of(f.request("github", "GET", "/b")) == 200);
  // A refused request draws no token.
  BOOST_TEST(status_of(f.request("github", "PUT", "/c")) == 403);
  auto r = f.request("github", "GET", "/d");
  refused_with(r, 429, "rate 2/min");
  int retry = std::stoi(header_of(r, "retry-after"));
  BOOST_TEST(retry >= 1);
  BOOST_TEST(retry <= 30);
  BOOST_TEST(echo_of(r)["retry_after"] == retry);
  BOOST_TEST(up.requests() == 2);
  BOOST_TEST(f.events.back().decision == "rate-limited");
}

BOOST_AUTO_TEST_CASE(an_allow_rule_can_have_a_rate_of_its_own) {
  Upstream up;
  ProxyFixture f;
  f.start(R"([proxies.p]
upstream = "UPSTREAM"
allow = [ { method = "POST", path = "/deploy", rate = "1/hour" }, { method = "GET" } ])",
          up.url());
  BOOST_TEST(status_of(f.request("p", "POST", "/deploy", "x")) == 200);
  auto r = f.request("p", "POST", "/deploy", "x");
  refused_with(r, 429, "allow[0] rate 1/hour");
  BOOST_TEST(std::stoi(header_of(r, "retry-after")) > 3000);
  BOOST_TEST(status_of(f.request("p", "GET", "/status")) == 200);  // other rules are not limited
}

BOOST_AUTO_TEST_CASE(past_max_requests_every_request_is_refused_with_403) {
  Upstream up;
  ProxyFixture f;
  f.start(std::string(kGithub) + "max-requests = 2\n", up.url());
  BOOST_TEST(status_of(f.request("github", "GET", "/a")) == 200);
  BOOST_TEST(status_of(f.request("github", "PUT", "/b")) == 403);  // refused by the policy: not counted
  BOOST_TEST(status_of(f.request("github", "GET", "/c")) == 200);
  auto r = f.request("github", "GET", "/d");
  refused_with(r, 403, "max-requests 2");
  BOOST_TEST(echo_of(r)["error"] == "request budget exhausted");
  BOOST_TEST(echo_of(r)["max_requests"] == 2);
  BOOST_TEST(up.requests() == 2);
  BOOST_TEST(f.events.back().decision == "over-budget");
}

BOOST_AUTO_TEST_CASE(a_tls_upstream_is_verified) {
  TempDir certs;
  TestCa ca = TestCa::make(certs.path);
  Upstream up(&ca);
  {
    ProxyFixture f;
    f.start(kGithub, up.url(), ca.ca_pem);
    auto r = f.request("github", "GET", "/tls");
    BOOST_TEST(status_of(r) == 200, r);
    BOOST_TEST(echo_of(r)["headers"]["authorization"] == "Bearer ***");
    BOOST_TEST(up.received().at(0)["authorization"] == "Bearer " + kToken);
  }
  ProxyFixture f;  // the system's CAs do not know the test CA
  f.start(kGithub, up.url());
  auto r = f.request("github", "GET", "/tls");
  refused_with(r, 502, "policy read-only");
  BOOST_TEST(f.events.at(0).decision == "upstream-error");
  BOOST_TEST(up.requests() == 1);
}

BOOST_AUTO_TEST_CASE(an_unreachable_upstream_is_a_502) {
  int port;
  {
    Upstream gone;
    port = gone.port();
  }
  ProxyFixture f;
  f.start(kGithub, "http://127.0.0.1:" + std::to_string(port));
  auto r = f.request("github", "GET", "/x");
  BOOST_TEST(status_of(r) == 502);
  BOOST_TEST(echo_of(r)["error"] == "bad gateway");
}

BOOST_AUTO_TEST_CASE(large_answers_stream_through_whole) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.request("github", "GET", "/bytes/5000000");
  BOOST_TEST(status_of(r) == 200);
  BOOST_TEST(header_of(r, "transfer-encoding") == "chunked");
  BOOST_TEST(body_of(r) == std::string(5000000, 'x'));
  BOOST_TEST(f.events.at(0).response_bytes == 5000000u);
}

BOOST_AUTO_TEST_CASE(a_slow_reader_pauses_the_upstream_and_a_gone_one_cancels_it) {
  Upstream up;
  ProxyFixture f;
  ProxyLimits limits;
  limits.max_backlog = 64 * 1024;  // pause and resume the transfer many times
  f.start(kGithub, up.url(), "", limits);
  // Reads in small pieces with pauses: the answer must still arrive whole.
  std::string body = while_loop_runs(&f.loop, [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", f.sock("github").c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::string("connect failed");
    std::string req = "GET /bytes/8000000 HTTP/1.1\r\nConnection: close\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[16384];
    for (int i = 1;; ++i) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (i % 2 == 0) usleep(1000);  // far slower than the loopback upstream
    }
    ::close(fd);
    return body_of(out);
  });
  BOOST_TEST(body.size() == 8000000u);
  BOOST_TEST((body.find_first_not_of('x') == std::string::npos));
  BOOST_TEST(f.events.at(0).response_bytes == 8000000u);

  // A reader that leaves half way: the transfer is cancelled, the proxy goes on.
  while_loop_runs(&f.loop, [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", f.sock("github").c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::string();
    std::string req = "GET /bytes/50000000 HTTP/1.1\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[16384];
    size_t got = 0;
    while (got < 1000000) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    return std::string();
  });
  while (f.server->connections() > 0) uv_run(&f.loop, UV_RUN_ONCE);
  BOOST_REQUIRE(f.events.size() == 2u);
  BOOST_TEST(f.events[1].decision == "client-closed");
  BOOST_TEST(f.events[1].status == 200);
  BOOST_TEST(f.events[1].response_bytes < 50000000u);
  BOOST_TEST(status_of(f.request("github", "GET", "/after")) == 200);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order_on_one_connection) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto r = f.send("github", "GET /one HTTP/1.1\r\nHost: p\r\n\r\nGET /two HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
  auto first = r.find("\"path\":\"/one\"");
  auto second = r.find("\"path\":\"/two\"");
  BOOST_TEST(first != std::string::npos);
  BOOST_TEST(second != std::string::npos);
  BOOST_TEST(first < second);
  BOOST_TEST(f.events.size() == 2u);
}

BOOST_AUTO_TEST_CASE(hostile_requests_get_clear_errors_and_the_proxy_stays_healthy) {
  Upstream up;
  ProxyFixture f;
  ProxyLimits limits;
  limits.max_body_bytes = 1024 * 1024;
  f.start(kGithub, up.url(), "", limits);
  auto garbage = f.send("github", "GARBAGE \x01\x02 nonsense\r\n\r\n");
  BOOST_TEST(status_of(garbage) == 400, garbage);
  BOOST_TEST(echo_of(garbage)["reason"].get<std::string>().find("malformed request") == 0u);
  auto huge = f.send("github", "GET / HTTP/1.1\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n");
  BOOST_TEST(status_of(huge) == 431);
  auto body = f.send("github", "POST /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\nabc");
  BOOST_TEST(status_of(body) == 413);
  auto chunked = f.send("github", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                      std::string("100001\r\n") + std::string(0x100001, 'a') + "\r\n0\r\n\r\n");
  BOOST_TEST(status_of(chunked) == 413);
  auto cut = f.send("github", "POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly this", true);
  BOOST_TEST(status_of(cut) == 400);
  auto upgrade = f.send("github", "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  BOOST_TEST(status_of(upgrade) == 501);
  auto absolute = f.request("github", "GET", "http://api.github.com/repos");
  BOOST_TEST(status_of(absolute) == 400);
  BOOST_TEST(f.send("github", "", true).empty());  // connect and leave: nothing to answer
  // Still serving, and nothing reached the upstream.
  BOOST_TEST(up.requests() == 0);
  BOOST_TEST(status_of(f.request("github", "GET", "/fine")) == 200);
  BOOST_TEST(f.server->connections() == 0u);
}

BOOST_AUTO_TEST_CASE(connect_is_honoured_only_for_listed_egress_pairs) {
  Upstream target;
  Upstream other;
  ProxyFixture f;
  f.start(std::string(kGithub) + "[sandbox]\nnetwork = \"proxies\"\negress = [\"127.0.0.1:" +
              std::to_string(target.port()) + "\"]\n",
          target.url());
  // Through the tunnel, a plain request to the target: no header is added.
  auto r = f.send("egress", "CONNECT 127.0.0.1:" + std::to_string(target.port()) +
                                " HTTP/1.1\r\nHost: x\r\n\r\nGET /tunnelled HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  BOOST_TEST(r.rfind("HTTP/1.1 200 Connection established\r\n\r\n", 0) == 0u, r);
  auto inner = r.substr(r.find("\r\n\r\n") + 4);
  BOOST_TEST(echo_of(inner)["path"] == "/tunnelled");
  BOOST_TEST(echo_of(inner)["headers"].count("authorization") == 0u);
  auto unlisted = f.send("egress", "CONNECT 127.0.0.1:" + std::to_string(other.port()) + " HTTP/1.1\r\n\r\n");
  refused_with(unlisted, 403, "egress");
  BOOST_TEST(echo_of(unlisted)["reason"].get<std::string>().find("is not in [sandbox] egress (allowed: 127.0.0.1:") !=
             std::string::npos);
  refused_with(f.send("egress", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"),
               403, "egress");
  refused_with(f.send("github", "CONNECT 127.0.0.1:" + std::to_string(target.port()) + " HTTP/1.1\r\n\r\n"), 403,
               "connect");
  BOOST_TEST(other.requests() == 0);
  f.stop();  // a tunnel's event comes when it ends
  auto tunnel = std::find_if(f.events.begin(), f.events.end(), [](const ProxyEvent& e) { return e.status == 200; });
  BOOST_REQUIRE(tunnel != f.events.end());
  BOOST_TEST(tunnel->proxy == "egress");
  BOOST_TEST(tunnel->method == "CONNECT");
  BOOST_TEST(tunnel->path == "127.0.0.1:" + std::to_string(target.port()));
  BOOST_TEST(tunnel->decision == "allowed");
  BOOST_TEST(tunnel->request_bytes > 0u);
  BOOST_TEST(tunnel->response_bytes > 0u);
  BOOST_TEST(f.events.size() == 4u);
}

BOOST_AUTO_TEST_CASE(closing_the_server_cuts_open_connections_and_removes_its_sockets) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  BOOST_TEST(f.server->forwards().size() == 2u);
  BOOST_TEST(f.server->forwards()[0].port == 3128);
  BOOST_TEST(f.server->forwards()[1].port == 3129);
  BOOST_TEST(f.server->forwards()[1].socket == f.sock("github"));
  auto env = f.server->environment();
  BOOST_TEST((std::find(env.begin(), env.end(), "HEARTH_PROXY_GITHUB=http://127.0.0.1:3129") != env.end()));
  BOOST_TEST((std::find(env.begin(), env.end(), "https_proxy=http://127.0.0.1:3128") != env.end()));
  BOOST_TEST((std::find(env.begin(), env.end(), "NO_PROXY=127.0.0.1,localhost") != env.end()));
  // A client that connects and sends half a request, then the server closes.
  std::thread t([&] { raw_exchange(f.sock("github"), "GET /x HTTP/1.1\r\n"); });
  while (f.server->connections() == 0) uv_run(&f.loop, UV_RUN_ONCE);
  f.stop();
  t.join();
  BOOST_TEST(!std::filesystem::exists(f.sock("github")));
  BOOST_TEST(!std::filesystem::exists(f.sock("egress")));
}

BOOST_AUTO_TEST_SUITE_END()
