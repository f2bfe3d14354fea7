// A hostile step granted `git:push` tries to run code on the host through
// the broker's git, with the push token in its environment: through the
// workspace's .git/config (remote.origin.receivepack, core.gitProxy), a
// local remote whose hooks the step wrote, and a "branch" named
// `--receive-pack=...` in .git/HEAD. Each attack writes a marker (and the
// environment it got) to a host path outside the workspace, which the
// sandboxed step cannot reach by itself. The push goes to `git http-backend`
// behind a stand-in server on 127.0.0.1 that wants the token.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>

#include "engine/fixture.h"
#include "tests/support/git_push.h"

namespace {

using namespace hearth::testing;

const std::string kToken = "push_S3cr3t-broker-git-4e19b7";

// A script the step writes into the workspace: on the host it would record
// its environment (the token with it) in `marker`.
std::string host_script(const fs::path& marker, const std::string& name) {
  return "printf '#!/bin/sh\\nenv > " + marker.string() + "\\n' > " + name + " && chmod +x " + name;
}

// The stand-in server with an empty bare repository, the workspace's
// repository (one commit on main, an `origin` of the host), and the host
// paths an attack would write.
struct PushSetup {
  TempDir host;
  fs::path marker = host.path / "ran-on-host";
  PushRemote remote{host.path / "served", "pusher", kToken};
  GitHttpServer& server = remote.server();
  std::unique_ptr<TempRepo> repo;

  // `attack` gives the step's script after its commit, from the setup's
  // paths; with `earlier`, the commit and that script run in a step before
  // it (what a step leaves in the workspace for the next).
  explicit PushSetup(const std::function<std::string(const PushSetup&)>& attack,
                     const std::function<std::string(const PushSetup&)>& earlier = {}) {
    std::string run = attack(*this);
    std::string commit =
        "echo changed >> README\n"
        "/usr/bin/git -c user.name=bot -c user.email=bot@example.com commit -qam \"from the sandbox\"\n";
    std::string plant, needs;
    if (earlier) {
      plant = "[[steps]]\nid = \"plant\"\nrun = '''\n" + commit + earlier(*this) + "\n'''\n\n";
      needs = "needs = [\"plant\"]\n";
      commit.clear();
    }
    repo = std::make_unique<TempRepo>(R"([sandbox]
kind = "namespace"
workspace = "checkout"

)" + remote.grant() + "\n" + plant + R"([[steps]]
id = "attack"
commands = ["git"]
)" + needs + R"(run = '''
)" + commit + run + R"(
echo "done"
'''
)");
    commit_checkout(repo->root(), remote.url());
  }

  RunResult run() {
    ScopedEnv token({{"PUSH_TOKEN", kToken}});
    return repo->run();
  }

  std::string pushed_log() { return remote.log(); }

  // Runs the workflow: the attack's push went through as a plain push (the
  // step's commit on top of the first) and nothing ran on the host.
  RunResult expect_plain_push() {
    auto r = run();
    std::string out = r.succeeded_output("attack");
    BOOST_TEST(!has(out, "push="), out);
    BOOST_TEST(pushed_log() == "from the sandbox\nfirst\n");
    expect_contained(r);
    return r;
  }

  // Nothing ran on the host, and the token is nowhere the engine keeps or
  // reports, nor in any file outside the workspace.
  void expect_contained(const RunResult& r) {
    BOOST_TEST(!fs::exists(marker), "the step's code ran on the host: " << read_file(marker));
    repo->expect_secret_absent(r, kToken);
    for (auto& e : fs::recursive_directory_iterator(host.path))
      if (e.is_regular_file()) BOOST_TEST(!has(read_file(e.path()), kToken), "the token is in " << e.path());
  }
};


}  // namespace

BOOST_AUTO_TEST_SUITE(broker_git_security)

BOOST_AUTO_TEST_CASE(a_receivepack_the_step_configured_never_runs_and_the_push_goes_to_the_workflows_remote) {
  PushSetup s([](const PushSetup& p) {
    return host_script(p.marker, "rp.sh") + R"(
/usr/bin/git config remote.origin.url ./evil.git
/usr/bin/git config remote.origin.receivepack ./rp.sh
git push origin HEAD || echo "push=$?")";
  });
  s.expect_plain_push();
  BOOST_TEST(s.server.authorized_requests() > 0);
}

BOOST_AUTO_TEST_CASE(a_local_remote_with_a_pre_receive_hook_the_step_wrote_never_runs) {
  PushSetup s([](const PushSetup& p) {
    return "/usr/bin/git init -q --bare evil.git && mkdir -p evil.git/hooks\n" + host_script(p.marker, "evil.git/hooks/pre-receive") + R"(
/usr/bin/git remote set-url origin ./evil.git
git push origin HEAD || echo "push=$?")";
  });
  s.expect_plain_push();
}

BOOST_AUTO_TEST_CASE(a_git_proxy_the_step_configured_never_runs) {
  PushSetup s([](const PushSetup& p) {
    return host_script(p.marker, "proxy.sh") + R"(
/usr/bin/git remote set-url origin git://example.invalid/x.git
/usr/bin/git config core.gitProxy ./proxy.sh
git push origin HEAD || echo "push=$?")";
  });
  s.expect_plain_push();
}

BOOST_AUTO_TEST_CASE(a_branch_named_like_an_option_is_refused_and_runs_nothing) {
  // An earlier step leaves HEAD on a "branch" named like an option; the
  // pushing step's {branch} would be that name.
  PushSetup s(
      [](const PushSetup&) {
        return R"(git push origin --receive-pack=./rp.sh || echo "by-name=$?"
git push origin HEAD || echo "by-head=$?"
echo 'ref: refs/heads/@{-1}' > .git/HEAD
git push origin HEAD || echo "previous=$?")";
      },
      [](const PushSetup& p) {
        return host_script(p.marker, "rp.sh") + R"(
/usr/bin/git remote set-url origin ./evil.git && /usr/bin/git init -q --bare evil.git
mkdir -p '.git/refs/heads/--receive-pack=.' && /usr/bin/git rev-parse HEAD > .git/refs/heads/--receive-pack=./rp.sh
echo 'ref: refs/heads/--receive-pack=./rp.sh' > .git/HEAD)";
      });
  auto r = s.run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(has(out, "by-name=126"), out);
  BOOST_TEST(has(out, "by-head=126"), out);
  BOOST_TEST(has(out, "previous=126"), out);
  BOOST_TEST(has(out, "not a valid branch name"), out);
  BOOST_TEST(s.pushed_log() == "");  // nothing reached the server
  s.expect_contained(r);
}

BOOST_AUTO_TEST_CASE(a_path_behind_a_link_or_joined_to_an_option_cannot_leave_the_workspace) {
  // The broker's argument check: `-o link/new` (a directory to be created
  // behind a link to the host) and `-o/host/dir` (the value joined to the
  // option) would have git write patches on the host as root.
  TempDir host;
  auto outside = host.path / "outside";
  fs::create_directories(outside);
  TempRepo repo(R"([sandbox]
kind = "namespace"
workspace = "checkout"

[commands.git]
allow = ["format-patch *"]

[[steps]]
id = "attack"
commands = ["git"]
run = '''
ln -s )" + outside.string() + R"( link
git format-patch -1 -o link/new || echo "link=$?"
git format-patch -1 -o)" + outside.string() + R"( || echo "joined=$?"
git format-patch -1 -o patches > list.txt || echo "inside=$?"
'''
)");
  write_file(repo.root() / "README", "hello\n");
  sh("cd '" + repo.root().string() + "' && git init -q -b main . && git add README workflow.toml && "
     "git -c user.name=t -c user.email=t@example.com commit -qm first");
  auto r = repo.run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(has(out, "link=126"), out);
  BOOST_TEST(has(out, "joined=126"), out);
  BOOST_TEST(has(out, "resolves outside the workspace"), out);
  BOOST_TEST(fs::is_empty(outside), "git wrote on the host");
}

BOOST_AUTO_TEST_SUITE_END()
