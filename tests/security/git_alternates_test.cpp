// A hostile step granted `git:push` lists another repository of the host as
// an alternate object store of its workspace (.git/objects/info/alternates,
// or http-alternates) and points its branch at a commit of that repository:
// the broker's git, which reads the workspace's objects, would find the
// commit there and send the host's private objects to the remote. Real git,
// pushing to `git http-backend` behind a stand-in server on 127.0.0.1.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "sandbox/sandbox.h"
#include "tests/support/git_push.h"
#include "tests/engine/fixture.h"

namespace {

using namespace hearth::testing;

const std::string kToken = "push_S3cr3t-alternates-71c0e4";
const std::string kHostSecret = "host-only-marker-93be1f";

// A private repository elsewhere on the host, the stand-in server with an
// empty bare repository, and the run's repository (one commit on main, a
// checkout workspace, a git grant that pushes to the server).
struct AlternatesSetup {
  TempDir host;
  fs::path other = host.path / "private";
  PushRemote remote{host.path / "served", "pusher", kToken};
  std::string secret_commit;
  std::unique_ptr<TempRepo> repo;

  // `attack` is the step's script; "{OTHER}" stands for the private
  // repository's object directory and "{COMMIT}" for its commit.
  explicit AlternatesSetup(std::string attack) {
    sh("git init -q -b main '" + other.string() + "'");
    write_file(other / "private.txt", kHostSecret + "\n");
    sh("cd '" + other.string() + "' && git add private.txt && git -c user.name=h -c user.email=h@example.com commit -qm '" +
       kHostSecret + "'");
    secret_commit = sh_output("git -C '" + other.string() + "' rev-parse HEAD");
    for (auto [key, value] : {std::pair<std::string, std::string>{"{OTHER}", (other / ".git" / "objects").string()},
                              {"{COMMIT}", secret_commit}})
      for (size_t at; (at = attack.find(key)) != std::string::npos;) attack.replace(at, key.size(), value);
    repo = std::make_unique<TempRepo>(R"([sandbox]
kind = "namespace"
workspace = "checkout"

)" + remote.grant() + R"(
[[steps]]
id = "attack"
commands = ["git"]
run = '''
)" + attack + R"(
echo "done"
'''
)");
    commit_checkout(repo->root());
  }

  RunResult run() {
    ScopedEnv token({{"PUSH_TOKEN", kToken}});
    return repo->run();
  }

  // Runs the workflow: the step's push was refused (exit 126) naming each
  // of `parts`, and nothing was sent. Returns the run.
  RunResult expect_refused(std::initializer_list<std::string> parts) {
    auto r = run();
    std::string out = r.succeeded_output("attack");
    BOOST_TEST(has(out, "push=126"), out);
    for (const auto& part : parts) BOOST_TEST(has(out, part), out);
    expect_nothing_sent();
    return r;
  }

  // The remote never received the private commit, nor anything else.
  void expect_nothing_sent() {
    std::string remote = this->remote.git_dir().string();
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
  // The error names the line.
  auto r = s.expect_refused({".git/objects/info/alternates", "private/.git/objects"});
  s.repo->expect_secret_absent(r, kToken);
}

BOOST_AUTO_TEST_CASE(http_alternates_are_refused_and_send_nothing) {
  if (without_namespaces()) return;
  AlternatesSetup s(R"(echo '{OTHER}' > .git/objects/info/http-alternates
echo {COMMIT} > .git/refs/heads/main
git push origin HEAD || echo "push=$?")");
  s.expect_refused({"http-alternates"});
}

BOOST_AUTO_TEST_CASE(a_push_of_the_steps_own_commit_still_reads_the_lent_repository) {
  if (without_namespaces()) return;
  AlternatesSetup s(R"(echo changed >> README
/usr/bin/git -c user.name=bot -c user.email=bot@example.com commit -qam "from the sandbox"
git push origin HEAD || echo "push=$?")");
  auto r = s.run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(!has(out, "push="), out);
  BOOST_TEST(s.remote.log() == "from the sandbox\nfirst\n");
  s.expect_nothing_sent();
}

BOOST_AUTO_TEST_SUITE_END()
