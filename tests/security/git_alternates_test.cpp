// A hostile step granted `git:push` lists another repository of the host as
// an alternate object store of its workspace (.git/objects/info/alternates,
// or http-alternates) and points its branch at a commit of that repository:
// the broker's git, which reads the workspace's objects, would find the
// commit there and send the host's private objects to the remote. Real git,
// pushing to `git http-backend` behind a stand-in server on 127.0.0.1.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "sandbox/sandbox.h"
#include "tests/commands/git_http_server.h"
#include "tests/engine/fixture.h"

namespace {

namespace fs = std::filesystem;
using hearth::testing::GitHttpServer;
using hearth::testing::TempDir;
using hearth::testing::TempRepo;
using hearth::testing::write_file;
using RunStatus = hearth::RunStatus;

const std::string kToken = "push_S3cr3t-alternates-71c0e4";
const std::string kHostSecret = "host-only-marker-93be1f";

void sh(const std::string& cmd) {
  std::string full = cmd + " >/dev/null 2>&1";
  BOOST_REQUIRE_MESSAGE(std::system(full.c_str()) == 0, cmd);
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool without_namespaces() {
  auto problem = hearth::sandbox::namespace_support_problem();
  if (!problem.empty()) BOOST_TEST_MESSAGE("skipped: " << problem);
  return !problem.empty();
}

// A private repository elsewhere on the host, the stand-in server with an
// empty bare repository, and the run's repository (one commit on main, a
// checkout workspace, a git grant that pushes to the server).
struct AlternatesSetup {
  TempDir host;
  fs::path other = host.path / "private";
  fs::path served = host.path / "served";
  GitHttpServer server{served, "pusher", kToken};
  std::string secret_commit;
  std::unique_ptr<TempRepo> repo;

  // `attack` is the step's script; "{OTHER}" stands for the private
  // repository's object directory and "{COMMIT}" for its commit.
  explicit AlternatesSetup(std::string attack) {
    sh("git init -q -b main '" + other.string() + "'");
    write_file(other / "private.txt", kHostSecret + "\n");
    sh("cd '" + other.string() + "' && git add private.txt && git -c user.name=h -c user.email=h@example.com commit -qm '" +
       kHostSecret + "'");
    secret_commit = capture("git -C '" + other.string() + "' rev-parse HEAD");
    while (!secret_commit.empty() && secret_commit.back() == '\n') secret_commit.pop_back();
    for (auto [key, value] : {std::pair<std::string, std::string>{"{OTHER}", (other / ".git" / "objects").string()},
                              {"{COMMIT}", secret_commit}})
      for (size_t at; (at = attack.find(key)) != std::string::npos;) attack.replace(at, key.size(), value);
    sh("git init -q --bare -b main '" + (served / "remote.git").string() + "'");
    std::string url = server.url("remote.git");
    std::string prefix = "http://127.0.0.1:" + std::to_string(server.port());
    repo = std::make_unique<TempRepo>(R"([sandbox]
kind = "namespace"
workspace = "checkout"

[commands.git]
secrets = ["PUSH_TOKEN"]
preset = "git:push"
remote = ")" + url + R"("
env = { GIT_CONFIG_COUNT = "1", GIT_CONFIG_KEY_0 = "credential.)" + prefix + R"(.helper", GIT_CONFIG_VALUE_0 = "!f() { echo username=pusher; echo password=$PUSH_TOKEN; }; f" }

[[steps]]
id = "attack"
commands = ["git"]
run = '''
)" + attack + R"(
echo "done"
'''
)");
    write_file(repo->root() / "README", "hello\n");
    sh("cd '" + repo->root().string() + "' && git init -q -b main . && git add README workflow.toml && "
       "git -c user.name=t -c user.email=t@example.com commit -qm first");
  }

  hearth::testing::RunResult run() {
    setenv("PUSH_TOKEN", kToken.c_str(), 1);
    auto r = repo->run();
    unsetenv("PUSH_TOKEN");
    return r;
  }

  // The remote never received the private commit, nor anything else.
  void expect_nothing_sent() {
    std::string remote = (served / "remote.git").string();
    BOOST_TEST(std::system(("git --git-dir='" + remote + "' cat-file -e " + secret_commit + " 2>/dev/null").c_str()) != 0,
               "the host's private commit reached the remote");
    BOOST_TEST(!has(capture("git --git-dir='" + remote + "' log --all --format=%s 2>/dev/null"), kHostSecret));
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(git_alternates_security)

BOOST_AUTO_TEST_CASE(an_alternate_naming_another_host_repository_is_refused_and_sends_nothing) {
  if (without_namespaces()) return;
  AlternatesSetup s(R"(echo '{OTHER}' >> .git/objects/info/alternates
echo {COMMIT} > .git/refs/heads/main
git push origin HEAD || echo "push=$?")");
  auto r = s.run();
  std::string out = r.output("attack");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, out << r.step("attack").reason);
  BOOST_TEST(has(out, "push=126"), out);
  BOOST_TEST(has(out, ".git/objects/info/alternates"), out);
  BOOST_TEST(has(out, "private/.git/objects"), out);  // the error names the line
  s.expect_nothing_sent();
  s.repo->expect_secret_absent(r, kToken);
}

BOOST_AUTO_TEST_CASE(http_alternates_are_refused_and_send_nothing) {
  if (without_namespaces()) return;
  AlternatesSetup s(R"(echo '{OTHER}' > .git/objects/info/http-alternates
echo {COMMIT} > .git/refs/heads/main
git push origin HEAD || echo "push=$?")");
  auto r = s.run();
  std::string out = r.output("attack");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, out << r.step("attack").reason);
  BOOST_TEST(has(out, "push=126"), out);
  BOOST_TEST(has(out, "http-alternates"), out);
  s.expect_nothing_sent();
}

BOOST_AUTO_TEST_CASE(a_push_of_the_steps_own_commit_still_reads_the_lent_repository) {
  if (without_namespaces()) return;
  AlternatesSetup s(R"(echo changed >> README
/usr/bin/git -c user.name=bot -c user.email=bot@example.com commit -qam "from the sandbox"
git push origin HEAD || echo "push=$?")");
  auto r = s.run();
  std::string out = r.output("attack");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, out << r.step("attack").reason);
  BOOST_TEST(!has(out, "push="), out);
  BOOST_TEST(capture("git --git-dir='" + (s.served / "remote.git").string() + "' log --format=%s main") ==
             "from the sandbox\nfirst\n");
  s.expect_nothing_sent();
}

BOOST_AUTO_TEST_SUITE_END()
