// `hearth serve` attacked at the door: the real binary on 0.0.0.0, real
// sockets from several loopback addresses (127.0.0.2 and up are all
// loopback on Linux), a real state database. Each case is what an attacker
// without the secret (or with a signed but hostile body) tries, and what a
// legitimate sender must still see.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "ci/webhook.h"
#include "tests/engine/fixture.h"
#include "tests/support/served.h"
#include "tests/support/testdata.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::testing;

namespace {

using Response = HttpResponse;
const char* kSecret = "webhook-secret-for-intake-tests";

/// One TCP connection to the server from `source` (a loopback address of
/// the test's choosing, so the server sees distinct peers); an answer is
/// status 0 when the server closes first.
struct Client : HttpClient {
  explicit Client(int port, const char* source = "127.0.0.1") : HttpClient(port, source) {}
  Response response() { return response_or_close(); }
};

std::string signature(const std::string& body) { return "sha256=" + hearth::ci::hmac_sha256_hex(kSecret, body); }

std::string delivery_request(const std::string& id, const std::string& body, const std::string& sig) {
  return "POST /hooks/github HTTP/1.1\r\nHost: hooks\r\nContent-Type: application/json\r\n"
         "X-GitHub-Event: issues\r\nX-GitHub-Delivery: " + id + "\r\nX-Hub-Signature-256: " + sig +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string issue_body(int n) {
  return R"({"action": "opened", "issue": {"number": )" + std::to_string(n) + R"(, "title": "t"}})";
}

// Starts on issues.opened; appends the issue number to a file.
const std::string kRecord =
    workflow_toml({{.id = "note", .run = R"(echo "${{ inputs.issue.number }}" >> seen.log)"}}, github_head("record", {"issues.opened"}));

/// A repository and a running `hearth serve` on 0.0.0.0 (so that every
/// loopback address reaches it) on a free port.
struct Served : ServeFixture {
  void start(std::vector<std::string> extra = {}) { start_on("0.0.0.0", extra, {{"HEARTH_WEBHOOK_SECRET", kSecret}}); }
  Response deliver(const std::string& id, const std::string& body, const char* source = "127.0.0.1") {
    Client c(port, source);
    BOOST_REQUIRE(c.connected());
    c.send(delivery_request(id, body, signature(body)));
    return c.response();
  }
};


size_t line_count(const fs::path& file) {
  std::string text = read_file(file);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

/// Waits until `file` has at least `n` lines; fails the test after 20 s.
void wait_for_lines(const fs::path& file, size_t n) {
  auto deadline = Clock::now() + 20s;
  while (line_count(file) < n) {
    BOOST_REQUIRE_MESSAGE(Clock::now() < deadline, file.string() + " never reached " + std::to_string(n) + " lines");
    usleep(20 * 1000);
  }
}

/// Starts `s` serving the one workflow record (kRecord).
void start_recording(Served& s) {
  s.workflow("record", kRecord);
  s.start();
}

/// The delivery answered `r` was accepted, and issue `number` is all that
/// record wrote.
void expect_recorded(const Served& s, const Response& r, const std::string& number) {
  BOOST_TEST(r.status == 202, r.body);
  wait_for_lines(s.root() / "seen.log", 1);
  BOOST_TEST(read_file(s.root() / "seen.log") == number + "\n");
}

/// One column of the delivery's row, read from the state database the way
/// an operator would (sqlite3), after the server has stopped.
std::string delivery_column(const fs::path& db_path, const std::string& id, const std::string& column) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string sql = "SELECT " + column + " FROM deliveries WHERE id=?";
  BOOST_REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::string out = "<no such delivery>";
  if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// A step that records each time it starts, then waits for a file that
// never comes: the server is processing the delivery until it dies.
const std::string kHang = workflow_toml({{.id = "wait", .run = "echo started >> starts.log\nwhile [ ! -f go ]; do sleep 0.05; done\n"}},
                                        github_head("hang", {"issues.opened"}));

}  // namespace

BOOST_AUTO_TEST_SUITE(serve_intake_security)

BOOST_AUTO_TEST_CASE(a_signed_body_nested_100000_deep_is_refused_and_the_server_keeps_serving) {
  Served s;
  start_recording(s);
  std::string deep = R"({"action": "opened", "issue": {"number": 1}, "x": )" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  auto r = s.deliver("deep-1", deep);
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(has(r.body, "nests more than 512 levels"), r.body);
  // Brackets inside strings are text, not nesting.
  std::string quoted = R"({"action": "opened", "issue": {"number": 2}, "x": ")" + std::string(5000, '[') + "\"}";
  BOOST_TEST(s.deliver("quoted-2", quoted).status == 202);
  auto ok = s.deliver("after-3", issue_body(3));
  BOOST_TEST(ok.status == 202, ok.body);
}

BOOST_AUTO_TEST_CASE(a_delivery_whose_processing_killed_the_server_twice_is_marked_failed_not_retried) {
  Served s;
  s.workflow("hang", kHang);
  s.start();
  auto r = s.deliver("loop-1", issue_body(1));
  BOOST_REQUIRE_MESSAGE(r.status == 202, r.body);
  // Twice: the server dies (SIGKILL, as a segfault would) while the
  // delivery's run is in progress; each restart picks the delivery up again.
  for (size_t round = 1; round <= 2; ++round) {
    wait_for_lines(s.root() / "starts.log", round);
    s.proc->signal(SIGKILL);
    BOOST_REQUIRE(s.proc->finish().exit_code == -SIGKILL);
    if (round == 1) s.start();
  }
  // The third start gives up on it, says why, and keeps serving others.
  s.start({"--grace", "0.2"});
  BOOST_TEST(s.deliver("other-2", issue_body(2)).status == 202);
  wait_for_lines(s.root() / "starts.log", 3);
  s.proc->signal(SIGTERM);
  auto out = s.proc->finish(30s);
  BOOST_TEST(has(out.err, "delivery loop-1 marked failed"), out.err);
  BOOST_TEST(delivery_column(s.state(), "loop-1", "state") == "failed");
  BOOST_TEST(has(delivery_column(s.state(), "loop-1", "error"), "ended 2 times"));
  // Its step ran twice (once per crashed server), never a third time; the
  // other delivery's run started and was stopped by SIGTERM, which is not
  // counted as a crash.
  BOOST_TEST(line_count(s.root() / "starts.log") == 3u, read_file(s.root() / "starts.log"));
  BOOST_TEST(delivery_column(s.state(), "other-2", "unended_starts") == "0");
}

BOOST_AUTO_TEST_CASE(a_signed_body_that_is_not_utf8_is_refused_at_the_door) {
  Served s;
  start_recording(s);
  // A truncated sequence, a stray continuation byte, an overlong '/', a
  // UTF-16 surrogate: each inside a string, where JSON syntax allows bytes.
  int n = 0;
  for (std::string bad : {"\xC3(", "a\x80z", "\xC0\xAF", "\xED\xA0\x80"}) {
    std::string body = R"({"action": "opened", "issue": {"number": 1, "title": ")" + bad + "\"}}";
    auto r = s.deliver("utf8-" + std::to_string(++n), body);
    BOOST_TEST(r.status == 400, r.body);
    BOOST_TEST(has(r.body, "not valid UTF-8 (at byte"), r.body);
  }
  // Real UTF-8 (accents, CJK, an emoji) is accepted and reaches the run.
  std::string fine = R"({"action": "opened", "issue": {"number": 7, "title": "caf\u00e9 \u65e5\u672c )"
                     "\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x94\xA5\"}}";
  auto ok = s.deliver("utf8-ok", fine);
  expect_recorded(s, ok, "7");
}

BOOST_AUTO_TEST_CASE(a_thousand_slow_connections_from_one_address_do_not_lock_out_another) {
  Served s;
  start_recording(s);
  // 1,030 connections from 127.0.0.2, more than the server's 1,024 slots:
  // idle, stopped inside the headers, or stopped inside a body.
  std::string body_head = "POST /hooks/github HTTP/1.1\r\nHost: hooks\r\nX-GitHub-Event: issues\r\n"
                          "X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100000\r\n\r\n";
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 1030; ++i) {
    auto c = std::make_unique<Client>(s.port, "127.0.0.2");
    BOOST_REQUIRE_MESSAGE(c->connected(), "connection " << i << " from 127.0.0.2 failed");
    if (i % 3 == 1) c->send("POST /hooks/github HTTP/1.1\r\nHost: hooks\r\nX-GitHub-Ev");
    if (i % 3 == 2) c->send(body_head + std::string(50000, 'x'));
    slow.push_back(std::move(c));
  }
  // The server accepts in order: once a later connection of the same
  // address is answered, all of those were seen. It finds no room (that
  // address holds every slot already).
  Client probe(s.port, "127.0.0.2");
  probe.send("GET /healthz HTTP/1.1\r\nHost: hooks\r\n\r\n");
  BOOST_TEST(probe.response().status == 503);
  // Another address still gets its delivery in: 202, stored, run.
  auto r = s.deliver("during-slowloris", issue_body(42), "127.0.0.3");
  expect_recorded(s, r, "42");
}

BOOST_AUTO_TEST_CASE(big_unsigned_bodies_are_not_all_held_and_an_honest_sender_gets_through) {
  Served s;
  start_recording(s);
  // 16 requests of 16 MiB under a wrong signature from one address, all
  // sent but their last byte: the server may hold two such bodies for one
  // address (32 MiB), never sixteen (the 256 MiB that took RSS to 282 MB).
  const size_t size = 16u << 20;
  std::string chunk(size - 1, 'a');
  std::string head = "POST /hooks/github HTTP/1.1\r\nHost: hooks\r\nX-GitHub-Event: issues\r\n"
                     "X-GitHub-Delivery: big\r\nX-Hub-Signature-256: sha256=" + std::string(64, '0') +
                     "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
  std::vector<std::unique_ptr<Client>> big;
  for (int i = 0; i < 16; ++i) {
    big.push_back(std::make_unique<Client>(s.port, "127.0.0.4"));
    BOOST_REQUIRE(big.back()->connected());
    big.back()->send(head);
    big.back()->send(chunk);  // false once the server has refused and closed it
  }
  // Meanwhile a signed delivery from elsewhere is accepted.
  auto ok = s.deliver("honest", issue_body(5), "127.0.0.5");
  BOOST_TEST(ok.status == 202, ok.body);
  int refused_early = 0;
  for (auto& c : big) {
    c->send("a");
    auto r = c->response();
    BOOST_TEST((r.status >= 400 && r.status < 500), "status " << r.status << ": " << r.body);
    refused_early += r.status == 429;
  }
  BOOST_TEST(refused_early >= 14);
  // An unsigned body is refused from its headers alone.
  Client unsigned_client(s.port, "127.0.0.4");
  unsigned_client.send("POST /hooks/github HTTP/1.1\r\nHost: hooks\r\nX-GitHub-Event: issues\r\n"
                       "X-GitHub-Delivery: nosig\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n");
  auto r = unsigned_client.response();
  BOOST_TEST(r.status == 401);
  BOOST_TEST(has(r.body, "missing X-Hub-Signature-256"), r.body);
}

BOOST_AUTO_TEST_SUITE_END()
