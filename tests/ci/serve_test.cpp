// `hearth serve` end to end: the real binary listening on a free loopback
// port, real HTTP over sockets from a plain client in this file, real
// webhook payloads from tests/data/github-webhooks, a real state
// database. Asserts what a webhook sender and a watcher see.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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

using Client = HttpClient;
using Response = HttpResponse;
const char* kSecret = "webhook-secret-for-tests";
const char* kToken = "api-token-for-tests";

std::string payload(const std::string& rel) {
  std::string text = read_file(testdata_dir() / "github-webhooks" / rel);
  BOOST_REQUIRE_MESSAGE(!text.empty(), "missing test data " + rel);
  return text;
}

std::string signature(const std::string& body, const std::string& secret = kSecret) {
  return "sha256=" + hearth::ci::hmac_sha256_hex(secret, body);
}

/// A repository with workflows and a running `hearth serve` on a free port.
struct Served : ServeFixture {
  void start(std::vector<std::string> extra = {}, bool with_token = true) {
    std::map<std::string, std::string> env{{"HEARTH_WEBHOOK_SECRET", kSecret}};
    if (with_token) env["HEARTH_API_TOKEN"] = kToken;
    start_on("127.0.0.1", extra, env);
  }

  Response deliver(const std::string& event, const std::string& id, const std::string& body,
                   std::optional<std::string> sig = std::nullopt) {
    return send(request_text("POST", "/hooks/github",
                             {{"Content-Type", "application/json"},
                              {"X-GitHub-Event", event},
                              {"X-GitHub-Delivery", id},
                              {"X-Hub-Signature-256", sig.value_or(signature(body))}},
                             body));
  }
  Response get(const std::string& path, const std::string& token = kToken) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return send(request_text("GET", path, h, ""));
  }
  /// Waits (via GET /runs/<id>) until the run has finished; returns it.
  json finished_run(const std::string& id) {
    auto deadline = Clock::now() + 20s;
    for (;;) {
      auto r = get("/runs/" + id);
      if (r.status == 200) {
        auto j = r.as_json();
        std::string st = j["status"];
        if (st == "succeeded" || st == "failed" || st == "cancelled") return j;
      }
      BOOST_REQUIRE_MESSAGE(Clock::now() < deadline, "run " + id + " did not finish: " + r.body);
      usleep(20 * 1000);
    }
  }
  bool healthy() { return get("/healthz", "").status == 200; }
};

// Starts on issues.opened; prints the issue number and whether any secret leaked in.
const std::string kTriage = workflow_toml({{.id = "look", .run = R"(echo "issue=${{ inputs.issue.number }}"
echo "secret=${HEARTH_WEBHOOK_SECRET:-none} token=${HEARTH_API_TOKEN:-none}"
echo x >> runs.log
)"}},
                                          github_head("triage", {"issues.opened"}));

// Starts on push; its step waits for a file named after the delivery's ref.
const std::string kGated = workflow_toml(
    {
        {.id = "first", .run = "echo first"},
        {.id = "wait", .needs = {"first"}, .run = "while [ ! -f go ]; do sleep 0.02; done\necho \"${{ inputs.after }}\" >> ran.log\n"},
        {.id = "last", .needs = {"wait"}, .run = "echo last"},
    },
    github_head("gated", {"push"}));

// A push payload with a distinct "after", so each delivery has its own body.
std::string push_body(int n) {
  auto j = json::parse(payload("push/payload.json"));
  j["after"] = "commit-" + std::to_string(n);
  return j.dump();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(serve)

BOOST_AUTO_TEST_CASE(githubs_signature_test_vector_is_accepted_and_a_forgery_is_not) {
  auto vectors = json::parse(read_file(testdata_dir() / "github-webhooks" / "signature-vectors.json"));
  for (auto& v : vectors["vectors"]) {
    std::string secret = v["secret"], body = v["payload"], header = v["x_hub_signature_256"];
    BOOST_TEST(hearth::ci::hmac_sha256_hex(secret, body) == v["signature_hex"].get<std::string>());
    BOOST_TEST(hearth::ci::signature_valid(secret, body, header) == v["expect_valid"].get<bool>());
    std::string forged = header;
    forged.back() = forged.back() == '0' ? '1' : '0';
    BOOST_TEST(!hearth::ci::signature_valid(secret, body, forged));
    BOOST_TEST(!hearth::ci::signature_valid(secret, body, header.substr(7)));  // no "sha256="
  }
  // End to end: the server, given GitHub's example secret, takes the
  // example signature (and then refuses the body, which is not JSON).
  Served s;
  s.start();
  auto& v = vectors["vectors"][0];
  std::string body = v["payload"];
  std::string raw = request_text("POST", "/hooks/github",
                                 {{"X-GitHub-Event", "ping"}, {"X-GitHub-Delivery", "vector-1"},
                                  {"X-Hub-Signature-256", v["x_hub_signature_256"]}},
                                 body);
  // The test server's secret differs: the same request is a forgery to it.
  BOOST_TEST(s.send(raw).status == 401);
  Served g;
  g.proc = nullptr;
  {
    std::vector<std::string> args{"serve", "--listen", "127.0.0.1:0", "--repo", g.root().string()};
    g.proc = std::make_unique<HearthProcess>(
        hearth::testing::Invocation{args, {{"HEARTH_WEBHOOK_SECRET", v["secret"]}}, g.root()});
    auto port = g.proc->wait_for_stdout(std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"), 10s);
    BOOST_REQUIRE(port);
    g.port = std::stoi(*port);
  }
  auto r = g.send(raw);
  BOOST_TEST(r.status == 400);
  BOOST_TEST(r.body.find("not valid JSON") != std::string::npos, r.body);
}

BOOST_AUTO_TEST_CASE(forged_and_unsigned_deliveries_are_refused_and_start_nothing) {
  Served s;
  s.workflow("triage", kTriage);
  s.start();
  std::string body = payload("issues/opened.payload.json");
  auto unsigned_req = s.send(request_text("POST", "/hooks/github",
                                          {{"X-GitHub-Event", "issues"}, {"X-GitHub-Delivery", "f-1"}}, body));
  BOOST_TEST(unsigned_req.status == 401);
  BOOST_TEST(unsigned_req.body.find("missing X-Hub-Signature-256") != std::string::npos, unsigned_req.body);
  BOOST_TEST(s.deliver("issues", "f-2", body, signature(body, "another secret")).status == 401);
  std::string tampered = body;
  tampered.replace(tampered.find("\"opened\""), 8, "\"closed\"");
  BOOST_TEST(s.deliver("issues", "f-3", tampered, signature(body)).status == 401);
  BOOST_TEST(s.deliver("issues", "f-4", body, "sha1=" + hearth::ci::hmac_sha256_hex(kSecret, body)).status == 401);
  // Signed but broken: 400 with the cause.
  std::string broken = "{\"action\": \"opened\",";
  auto bad = s.deliver("issues", "f-5", broken);
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(bad.body.find("not valid JSON") != std::string::npos, bad.body);
  BOOST_TEST(s.send(request_text("POST", "/hooks/github", {{"X-Hub-Signature-256", signature(body)}}, body)).status == 400);
  auto runs = s.get("/runs");
  BOOST_REQUIRE(runs.status == 200);
  BOOST_TEST(runs.as_json().empty(), runs.body);
  BOOST_TEST(!fs::exists(s.root() / "runs.log"));
}

BOOST_AUTO_TEST_CASE(a_delivery_runs_its_workflow_once_whatever_is_replayed) {
  Served s;
  s.workflow("triage", kTriage);
  s.start();
  std::string body = payload("issues/opened.payload.json");
  auto first = s.deliver("issues", "d-1", body);
  BOOST_REQUIRE_MESSAGE(first.status == 202, first.body);
  auto runs = first.as_json()["runs"];
  BOOST_REQUIRE(runs.size() == 1u);
  std::string run_id = runs[0]["id"];
  BOOST_TEST(run_id == "d-1-triage");
  // GitHub redelivers with the same id: nothing new starts.
  auto again = s.deliver("issues", "d-1", body);
  BOOST_TEST(again.status == 200);
  BOOST_TEST(again.as_json()["duplicate"] == true);
  BOOST_TEST(again.as_json()["runs"][0]["id"] == run_id);
  // A captured delivery replayed under a fresh id: refused as a replay.
  auto replay = s.deliver("issues", "d-2", body);
  BOOST_TEST(replay.status == 200);
  BOOST_TEST(replay.as_json()["replay_of"] == "d-1");
  BOOST_TEST(replay.as_json()["runs"].empty());

  json run = s.finished_run(run_id);
  BOOST_TEST(run["status"] == "succeeded");
  std::string out = run["steps"][0]["output_tail"];
  int number = json::parse(body)["issue"]["number"];
  BOOST_TEST(out.find("issue=" + std::to_string(number)) != std::string::npos, out);
  BOOST_TEST(out.find("secret=none token=none") != std::string::npos, out);  // secrets never reach steps
  auto list = s.get("/runs").as_json();
  BOOST_TEST(list.size() == 1u);
  BOOST_TEST(lines_of(read_file(s.root() / "runs.log")).size() == 1u);
}

// Copies of one delivery on several connections at once land in the group
// being gathered, in the group being written, or after it is stored: each
// is answered duplicate, and one run starts.
BOOST_AUTO_TEST_CASE(copies_of_a_delivery_sent_at_once_start_one_run) {
  Served s;
  s.workflow("triage", kTriage);
  s.start();
  std::string body = payload("issues/opened.payload.json");
  std::string request = request_text("POST", "/hooks/github",
                                     {{"Content-Type", "application/json"},
                                      {"X-GitHub-Event", "issues"},
                                      {"X-GitHub-Delivery", "same"},
                                      {"X-Hub-Signature-256", signature(body)}},
                                     body);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<Client>(s.port));
    BOOST_REQUIRE(clients.back()->send(request));
  }
  int accepted = 0, duplicates = 0;
  for (auto& c : clients) {
    auto r = c->response_or_close();
    BOOST_REQUIRE_MESSAGE(r.status == 202 || r.status == 200, r.status << " " << r.body);
    (r.status == 202 ? accepted : duplicates) += 1;
    if (r.status == 200) BOOST_TEST(r.as_json()["duplicate"] == true, r.body);
    BOOST_TEST(r.as_json()["runs"][0]["id"] == "same-triage", r.body);
  }
  BOOST_TEST(accepted == 1);
  BOOST_TEST(duplicates == 11);
  BOOST_TEST(s.finished_run("same-triage")["status"] == "succeeded");
  BOOST_TEST(s.healthy());
  BOOST_TEST(s.get("/runs").as_json().size() == 1u);
  BOOST_TEST(lines_of(read_file(s.root() / "runs.log")).size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_event_no_workflow_wants_is_answered_200) {
  Served s;
  s.workflow("triage", kTriage);
  s.start();
  auto r = s.deliver("issue_comment", "n-1", payload("issue_comment/created.payload.json"));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.as_json()["message"] == "no workflow matches issue_comment.created");
  auto ping = s.deliver("ping", "n-2", payload("ping/payload.json"));
  BOOST_TEST(ping.status == 200);
  BOOST_TEST(s.get("/runs").as_json().empty());
}

// The connection budget and the headers deadline are the operator's to set:
// with --max-connections 2, a third connection from the address that holds
// both gets 503 (it would hold more than anyone); with --header-timeout 0.3,
// a client that stops inside its headers gets 408 well before the default 10 s.
BOOST_AUTO_TEST_CASE(the_connection_budget_and_header_deadline_are_flags) {
  Served s;
  s.workflow("triage", kTriage);
  s.start({"--max-connections", "2", "--header-timeout", "0.3"});
  Client first(s.port), second(s.port);
  first.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // unfinished headers: held open
  second.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  {
    Client third(s.port);
    third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(third.response().status == 503);
  }
  auto started = Clock::now();
  BOOST_TEST(first.response().status == 408);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() < 5000);
}

BOOST_AUTO_TEST_CASE(malformed_http_is_answered_and_the_server_stays_healthy) {
  Served s;
  s.workflow("triage", kTriage);
  s.start({"--max-body", "65536", "--request-timeout", "0.5"});
  {  // Truncated: the client stops in the middle of the headers.
    Client c(s.port);
    c.send("POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Le");
    c.shutdown_write();
    auto r = c.response();
    BOOST_TEST(r.status == 400);
  }
  // Signed (if wrongly): an unsigned delivery is refused from its headers alone.
  const std::string sig = "X-Hub-Signature-256: sha256=00\r\n";
  {  // Truncated body.
    Client c(s.port);
    c.send("POST /hooks/github HTTP/1.1\r\n" + sig + "Content-Length: 100\r\n\r\n{\"a\":");
    c.shutdown_write();
    BOOST_TEST(c.response().status == 400);
  }
  {  // Oversized headers.
    Client c(s.port);
    c.send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n");
    auto r = c.response();
    BOOST_TEST(r.status == 431);
    BOOST_TEST(c.closed_by_server());
  }
  {  // Bad chunked encoding.
    Client c(s.port);
    c.send("POST /hooks/github HTTP/1.1\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
    BOOST_TEST(c.response().status == 400);
  }
  {  // Announced body over the limit: refused before it is sent.
    Client c(s.port);
    c.send("POST /hooks/github HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n");
    BOOST_TEST(c.response().status == 413);
  }
  {  // Chunked body over the limit.
    Client c(s.port);
    std::string chunk(40000, 'x');
    char size[16];
    std::snprintf(size, sizeof size, "%zx", chunk.size());
    c.send("POST /hooks/github HTTP/1.1\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" + chunk +
           "\r\n" + size + "\r\n" + chunk + "\r\n0\r\n\r\n");
    BOOST_TEST(c.response().status == 413);
  }
  {  // Not HTTP at all.
    Client c(s.port);
    c.send("HELLO THERE\r\n\r\n");
    BOOST_TEST(c.response().status == 400);
  }
  {  // A slow client: half a request, then nothing.
    Client c(s.port);
    c.send("GET /healthz HTTP/1.1\r\nHost");
    auto r = c.response();
    BOOST_TEST(r.status == 408);
  }
  // A good chunked delivery still works, and so does everything else.
  std::string body = payload("issues/opened.payload.json");
  Client c(s.port);
  std::string head = "POST /hooks/github HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
                     "X-GitHub-Event: issues\r\nX-GitHub-Delivery: chunked-1\r\nX-Hub-Signature-256: " +
                     signature(body) + "\r\n\r\n";
  std::string chunked;
  for (size_t i = 0; i < body.size(); i += 1000) {
    std::string part = body.substr(i, 1000);
    char size[16];
    std::snprintf(size, sizeof size, "%zx", part.size());
    chunked += std::string(size) + "\r\n" + part + "\r\n";
  }
  c.send(head + chunked + "0\r\n\r\n");
  BOOST_TEST(c.response().status == 202);
  BOOST_TEST(s.healthy());
}

BOOST_AUTO_TEST_CASE(keep_alive_and_pipelined_requests_are_answered_in_order) {
  Served s;
  s.start();
  Client c(s.port);
  std::string body = payload("ping/payload.json");
  c.send(request_text("GET", "/healthz", {}, "") +
         request_text("POST", "/hooks/github",
                      {{"X-GitHub-Event", "ping"}, {"X-GitHub-Delivery", "p-1"},
                       {"X-Hub-Signature-256", signature(body)}, {"Content-Type", "application/json"}},
                      body) +
         request_text("GET", "/nowhere", {}, ""));
  BOOST_TEST(c.response().status == 200);
  auto hook = c.response();
  BOOST_TEST(hook.status == 200);
  BOOST_TEST(hook.as_json()["delivery"] == "p-1");
  BOOST_TEST(c.response().status == 404);
  c.send(request_text("GET", "/healthz", {}, ""));  // the same connection, still open
  BOOST_TEST(c.response().status == 200);
}

BOOST_AUTO_TEST_CASE(read_endpoints_need_the_bearer_token) {
  Served off;
  off.start({}, /*with_token=*/false);
  auto r = off.get("/runs", "anything");
  BOOST_TEST(r.status == 403);
  BOOST_TEST(r.body.find("HEARTH_API_TOKEN") != std::string::npos, r.body);
  BOOST_TEST(off.healthy());

  Served on;
  on.start();
  BOOST_TEST(on.get("/runs", "").status == 401);
  BOOST_TEST(on.get("/runs", "wrong-token").status == 401);
  BOOST_TEST(on.get("/runs", std::string(kToken) + "x").status == 401);
  BOOST_TEST(on.get("/runs/some-run/events", "").status == 401);
  BOOST_TEST(on.get("/runs").status == 200);
  BOOST_TEST(on.get("/runs/unknown-run").status == 404);
}

BOOST_AUTO_TEST_CASE(sse_replays_after_last_event_id_then_follows_live) {
  Served s;
  s.workflow("gated", kGated);
  s.start();
  auto r = s.deliver("push", "sse-1", push_body(1));
  BOOST_REQUIRE_MESSAGE(r.status == 202, r.body);
  std::string run_id = r.as_json()["runs"][0]["id"];
  auto events_request = [&](const std::string& last) {
    std::vector<std::pair<std::string, std::string>> h{{"Authorization", std::string("Bearer ") + kToken}};
    if (!last.empty()) h.emplace_back("Last-Event-ID", last);
    return request_text("GET", "/runs/" + run_id + "/events", h, "");
  };
  {  // Watch until the gated step has started (event 4: run, first x2, wait), then leave.
    Client c(s.port);
    c.send(events_request(""));
    BOOST_REQUIRE(c.read_until([](const std::string& in) { return in.find("\nid: 4\n") != std::string::npos; }));
    BOOST_TEST(c.received().find("200 OK") != std::string::npos);
    BOOST_TEST(c.received().find("text/event-stream") != std::string::npos);
  }
  Client c(s.port);
  c.send(events_request("4"));
  BOOST_REQUIRE(c.read_until([](const std::string& in) { return in.find("retry:") != std::string::npos; }));
  write_file(s.root() / "go", "");  // the rest happens while we watch
  BOOST_REQUIRE(c.read_until([](const std::string& in) { return in.find("event: run.finished") != std::string::npos; }));
  BOOST_TEST(c.closed_by_server());
  std::vector<int> ids;
  for (auto& l : lines_of(c.received()))
    if (l.rfind("id: ", 0) == 0) ids.push_back(std::stoi(l.substr(4)));
  BOOST_REQUIRE(!ids.empty());
  BOOST_TEST(ids.front() == 5);  // nothing at or before Last-Event-ID again
  for (size_t i = 1; i < ids.size(); ++i) BOOST_TEST(ids[i] == ids[i - 1] + 1);
  // A finished run replays and ends at once.
  Client done(s.port);
  done.send(events_request("0"));
  BOOST_REQUIRE(done.read_until([](const std::string& in) { return in.find("event: run.finished") != std::string::npos; }));
  BOOST_TEST(done.received().find("id: 1\nevent: run.started") != std::string::npos);
  BOOST_TEST(done.closed_by_server());
  auto bad = s.send(events_request("abc"));
  BOOST_TEST(bad.status == 400);
}

BOOST_AUTO_TEST_CASE(killed_after_202_the_restarted_server_runs_each_delivery_exactly_once) {
  Served s;
  s.workflow("gated", kGated);
  s.start({"--jobs", "1"});
  // The first run blocks on `go`; with one job, the second waits in the queue.
  auto a = s.deliver("push", "k-1", push_body(1));
  auto b = s.deliver("push", "k-2", push_body(2));
  BOOST_REQUIRE_MESSAGE(a.status == 202 && b.status == 202, a.body + b.body);
  s.proc->signal(SIGKILL);
  BOOST_TEST(s.proc->finish().exit_code == -SIGKILL);

  // The killed server's step is still looping; the restarted server kills
  // it (resume ends an interrupted attempt's leftovers) before it listens,
  // so the gate opens only for the resumed attempt.
  s.start({"--jobs", "1"});
  write_file(s.root() / "go", "");
  for (auto id : {"k-1-gated", "k-2-gated"}) BOOST_TEST(s.finished_run(id)["status"] == "succeeded");
  auto ran = lines_of(read_file(s.root() / "ran.log"));
  std::sort(ran.begin(), ran.end());
  BOOST_TEST(ran == (std::vector<std::string>{"commit-1", "commit-2"}), read_file(s.root() / "ran.log"));
  BOOST_TEST(s.get("/runs").as_json().size() == 2u);
  // Delivered again after the crash (GitHub's redelivery): still only once.
  BOOST_TEST(s.deliver("push", "k-1", push_body(1)).status == 200);
  // A third start finds nothing left to do.
  s.proc->signal(SIGTERM);
  BOOST_TEST(s.proc->finish().exit_code == 0);
  s.start();
  BOOST_TEST(s.get("/runs").as_json().size() == 2u);
  BOOST_TEST(lines_of(read_file(s.root() / "ran.log")).size() == 2u);
}

BOOST_AUTO_TEST_CASE(sigterm_cancels_after_the_grace_period_and_the_next_start_resumes) {
  Served s;
  s.workflow("gated", kGated);
  s.start({"--grace", "0.2"});
  auto r = s.deliver("push", "t-1", push_body(7));
  BOOST_REQUIRE(r.status == 202);
  {  // Wait until the gated step is running.
    Client c(s.port);
    c.send(request_text("GET", "/runs/t-1-gated/events", {{"Authorization", std::string("Bearer ") + kToken}}, ""));
    BOOST_REQUIRE(c.read_until([](const std::string& in) { return in.find("\nid: 4\n") != std::string::npos; }));
  }
  s.proc->signal(SIGTERM);
  auto out = s.proc->finish(10s);
  BOOST_TEST(out.exit_code == 0, out.err);
  BOOST_TEST(out.err.find("shutting down") != std::string::npos, out.err);
  write_file(s.root() / "go", "");
  s.start();
  BOOST_TEST(s.finished_run("t-1-gated")["status"] == "succeeded");
  BOOST_TEST(lines_of(read_file(s.root() / "ran.log")) == std::vector<std::string>{"commit-7"});
}

BOOST_AUTO_TEST_CASE(without_a_secret_it_refuses_to_start) {
  TempDir dir;
  HearthProcess p({{"serve", "--listen", "127.0.0.1:0", "--repo", dir.str()}, {{"HEARTH_WEBHOOK_SECRET", ""}}, dir.path});
  auto o = p.finish();
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("HEARTH_WEBHOOK_SECRET") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_SUITE_END()
