// Every entry point fails closed: a workflow that did not choose
// kind = "local" never runs its steps on the host. Where the namespace
// sandbox cannot start (simulated for real: hearth runs inside a user
// namespace whose user.max_user_namespaces is 0, as on a host that forbids
// them), `hearth run` and `hearth ci` refuse with the reason and record
// nothing; `hearth serve` runs webhook steps in the namespace sandbox.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <regex>

#include "ci/webhook.h"
#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"

using namespace hearth::testing;

namespace {

// hearth as on a host without user namespaces. The shell exits 97 when the
// simulation itself cannot be set up, so a broken harness cannot pass.
const std::vector<std::string> kNoUserNamespaces = {
    "/usr/bin/unshare", "-U", "-r", "--", "/bin/sh", "-c",
    "echo 0 > /proc/sys/user/max_user_namespaces || exit 97; exec \"$@\"", "sh"};

// A workflow without [sandbox]: it asks for the default, the namespace sandbox.
// Its step leaves a marker on the host if it ever runs there.
std::string marker_workflow(const fs::path& marker, const std::string& sandbox_table = "") {
  return "name = \"probe\"\n[on]\ngithub = [\"push\"]\n" + sandbox_table +
         "[[steps]]\nid = \"touch\"\nrun = \"echo ran > '" + marker.string() + "'\"\n";
}

// Sends `request` (which asks to close) to 127.0.0.1:`port`; returns all
// the server answered. Fails the test after 10 s without an answer.
std::string http_exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string reply;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    BOOST_REQUIRE_MESSAGE(poll(&p, 1, 10000) == 1, "no answer from the server; so far: " + reply);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

struct Repo {
  TempDir dir;
  Repo() { fs::create_directories(root() / ".hearth" / "workflows"); }
  fs::path root() const { return dir.path; }
  void workflow(const std::string& text) const { write_file(root() / ".hearth" / "workflows" / "probe.toml", text); }
  std::string runs_json() const {
    HearthProcess p(Invocation{{"--repo", root().string(), "runs", "--json"}, {}, root()});
    auto o = p.finish();
    return o.out;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(fail_closed_security)

BOOST_AUTO_TEST_CASE(run_without_namespaces_refuses_and_records_nothing) {
  Repo repo;
  fs::path marker = repo.root() / "host-marker";
  repo.workflow(marker_workflow(marker));
  HearthProcess p(Invocation{{"--repo", repo.root().string(), "run", "probe"}, {}, repo.root()}, kNoUserNamespaces);
  auto o = p.finish(30s);
  BOOST_REQUIRE_MESSAGE(o.exit_code != 97, "cannot simulate a host without user namespaces: " + o.err);
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(!fs::exists(marker), "the step ran on the host");
  BOOST_TEST(o.err.find("namespace sandbox, which cannot start on this host") != std::string::npos, o.err);
  BOOST_TEST(o.err.find("kind = \"local\"") != std::string::npos, o.err);  // what to do
  BOOST_TEST(o.err.find("probe.toml") != std::string::npos, o.err);        // which workflow
  auto runs = nlohmann::json::parse(repo.runs_json(), nullptr, false);
  BOOST_TEST((runs.is_array() && runs.empty()), repo.runs_json());
}

BOOST_AUTO_TEST_CASE(run_without_namespaces_runs_a_workflow_that_chose_local) {
  Repo repo;
  fs::path marker = repo.root() / "host-marker";
  repo.workflow(marker_workflow(marker, "[sandbox]\nkind = \"local\"\n"));
  HearthProcess p(Invocation{{"--repo", repo.root().string(), "run", "probe"}, {}, repo.root()}, kNoUserNamespaces);
  auto o = p.finish(30s);
  BOOST_REQUIRE_MESSAGE(o.exit_code != 97, "cannot simulate a host without user namespaces: " + o.err);
  BOOST_TEST(o.exit_code == 0, o.err);
  BOOST_TEST(read_file(marker) == "ran\n");
}

// `hearth sandbox run` probes the host only once its sandbox could not be
// made: the refusal still gives the host's reason, and nothing ran.
BOOST_AUTO_TEST_CASE(sandbox_run_without_namespaces_refuses_with_the_reason) {
  TempDir dir;
  fs::path marker = dir.path / "host-marker";
  HearthProcess p(Invocation{{"sandbox", "run", "--", "/bin/sh", "-c", "echo ran > " + marker.string()}, {}, dir.path},
                  kNoUserNamespaces);
  auto o = p.finish(30s);
  BOOST_REQUIRE_MESSAGE(o.exit_code != 97, "cannot simulate a host without user namespaces: " + o.err);
  BOOST_TEST(o.exit_code != 0);
  BOOST_TEST(!fs::exists(marker), "the command ran on the host");
  BOOST_TEST(o.err.find("the namespace sandbox cannot run: user namespaces are disabled on this host "
                        "(user.max_user_namespaces=0)") != std::string::npos,
             o.err);
}

BOOST_AUTO_TEST_CASE(ci_without_namespaces_refuses_instead_of_falling_back) {
  Repo repo;
  fs::path marker = repo.root() / "host-marker";
  repo.workflow(marker_workflow(marker));
  TempDir runner;
  write_file(runner.path / "event.json", R"({"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"})");
  write_file(runner.path / "output", "");
  write_file(runner.path / "summary", "");
  std::map<std::string, std::string> env = {
      {"GITHUB_ACTIONS", "true"},
      {"CI", "true"},
      {"GITHUB_EVENT_NAME", "push"},
      {"GITHUB_EVENT_PATH", (runner.path / "event.json").string()},
      {"GITHUB_OUTPUT", (runner.path / "output").string()},
      {"GITHUB_STEP_SUMMARY", (runner.path / "summary").string()},
      {"GITHUB_RUN_ID", "9001"},
      {"GITHUB_RUN_ATTEMPT", "1"},
      {"GITHUB_REPOSITORY", "octo-org/octo-repo"},
      {"GITHUB_JOB", "hearth"},
      {"GITHUB_WORKSPACE", repo.root().string()},
      {"RUNNER_TEMP", runner.str()},
  };
  HearthProcess p(Invocation{{"ci"}, env, repo.root()}, kNoUserNamespaces);
  auto o = p.finish(30s);
  BOOST_REQUIRE_MESSAGE(o.exit_code != 97, "cannot simulate a host without user namespaces: " + o.err);
  BOOST_TEST(o.exit_code != 0, o.out + o.err);
  BOOST_TEST(!fs::exists(marker), "the step ran on the host");
  std::string all = o.out + o.err;
  BOOST_TEST(all.find("cannot start on this host") != std::string::npos, all);
}

BOOST_AUTO_TEST_CASE(serve_runs_webhook_steps_in_the_namespace_sandbox) {
  Repo repo;
  // Writes to /tmp (the host's, if unsandboxed) and reports its seccomp mode.
  std::string host_probe = "/tmp/hearth-serve-probe-" + std::to_string(getpid());
  fs::remove(host_probe);
  repo.workflow(R"(name = "probe"
[on]
github = ["push"]
[[steps]]
id = "look"
run = '''
echo escaped > )" + host_probe + R"(
grep '^Seccomp:' /proc/self/status > seccomp.txt.tmp
mv seccomp.txt.tmp seccomp.txt
'''
)");
  const std::string secret = "fail-closed-secret";
  HearthProcess serve(Invocation{{"serve", "--listen", "127.0.0.1:0", "--repo", repo.root().string()},
                                 {{"HEARTH_WEBHOOK_SECRET", secret}},
                                 repo.root()});
  auto port = serve.wait_for_stdout(std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"), 10s);
  BOOST_REQUIRE_MESSAGE(port, "hearth serve did not start listening");
  std::string body = R"({"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"})";
  std::string request = "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "X-GitHub-Event: push\r\nX-GitHub-Delivery: fc-1\r\nX-Hub-Signature-256: sha256=" +
                        hearth::ci::hmac_sha256_hex(secret, body) +
                        "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string reply = http_exchange(std::stoi(*port), request);
  BOOST_REQUIRE_MESSAGE(reply.rfind("HTTP/1.1 202", 0) == 0, reply);
  fs::path report = repo.root() / "seccomp.txt";
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!fs::exists(report)) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the webhook's step never ran");
    usleep(20 * 1000);
  }
  BOOST_TEST(!fs::exists(host_probe), "the webhook's step wrote the host's /tmp");
  BOOST_TEST(read_file(report) == "Seccomp:\t2\n");
  fs::remove(host_probe);
}

BOOST_AUTO_TEST_SUITE_END()
