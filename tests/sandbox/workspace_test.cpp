// Workspaces from real git repositories (made with the git CLI): what a run
// gets, what it must not get from the host's .git, and reuse across resume.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "sandbox/workspace.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

// A repository with two commits on `main`, a `feature` branch, an origin
// remote, a credential helper and a hook in its config, and an uncommitted file.
struct HostRepo {
  TempDir tmp;
  fs::path repo;
  std::string first, second;
  HostRepo() {
    repo = tmp.path / "repo";
    std::string g = "git -C " + repo.string() + " -c user.name=t -c user.email=t@example.com ";
    sh_output("git init -q -b main " + repo.string());
    write_file(repo / "README.md", "one\n");
    sh_output(g + "add README.md && " + g + "commit -qm one");
    first = sh_output("git -C " + repo.string() + " rev-parse HEAD");
    write_file(repo / "src/app.c", "int main(){}\n");
    sh_output(g + "add src && " + g + "commit -qm two");
    second = sh_output("git -C " + repo.string() + " rev-parse HEAD");
    sh_output(g + "branch feature " + first);
    sh_output("git -C " + repo.string() + " remote add origin https://example.com/org/app.git");
    sh_output("git -C " + repo.string() + " config credential.helper 'store --file /root/.secret-creds'");
    sh_output("git -C " + repo.string() + " config http.extraheader 'Authorization: Bearer host-token'");
    write_file(repo / ".git/hooks/post-checkout", "#!/bin/sh\ntouch /tmp/hearth-hook-ran\n");
    fs::permissions(repo / ".git/hooks/post-checkout", fs::perms::owner_all);
    write_file(repo / "uncommitted.txt", "local only\n");
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(workspace)

BOOST_AUTO_TEST_CASE(checkout_gives_the_committed_tree_and_nothing_of_the_hosts_git_config) {
  HostRepo host;
  TempDir state;
  auto w = prepare_workspace({WorkspaceKind::checkout, host.repo.string(), "", (state.path / "ws" / "run-1").string()});
  BOOST_REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.message()));
  fs::path ws = w->path;
  BOOST_TEST(read_file(ws / "README.md") == "one\n");
  BOOST_TEST(read_file(ws / "src/app.c") == "int main(){}\n");
  BOOST_TEST(!fs::exists(ws / "uncommitted.txt"));
  BOOST_TEST(w->commit == host.second);
  BOOST_TEST(w->branch == "main");
  // git works in it, sees a clean tree on `main`, and knows origin.
  BOOST_TEST(sh_output("git -C " + ws.string() + " status --porcelain") == "");
  BOOST_TEST(sh_output("git -C " + ws.string() + " rev-parse --abbrev-ref HEAD") == "main");
  BOOST_TEST(sh_output("git -C " + ws.string() + " log --format=%s") == "two\none");
  BOOST_TEST(sh_output("git -C " + ws.string() + " remote get-url origin") == "https://example.com/org/app.git");
  std::string config = read_file(ws / ".git/config");
  BOOST_TEST(config.find("credential") == std::string::npos, config);
  BOOST_TEST(config.find("host-token") == std::string::npos, config);
  BOOST_TEST(!fs::exists(ws / ".git/hooks/post-checkout"));
  BOOST_TEST(!fs::exists("/tmp/hearth-hook-ran"));
  BOOST_REQUIRE(w->read_only.size() == 1u);
  BOOST_TEST(w->read_only[0] == fs::canonical(host.repo / ".git/objects").string());
}

BOOST_AUTO_TEST_CASE(checkout_at_a_ref_and_clear_errors_for_bad_ones) {
  HostRepo host;
  TempDir state;
  auto w = prepare_workspace({WorkspaceKind::checkout, host.repo.string(), "feature", (state.path / "a").string()});
  BOOST_REQUIRE(w.ok());
  BOOST_TEST(w->branch == "feature");
  BOOST_TEST(w->commit == host.first);
  BOOST_TEST(!fs::exists(fs::path(w->path) / "src"));
  auto detached = prepare_workspace({WorkspaceKind::checkout, host.repo.string(), host.first, (state.path / "b").string()});
  BOOST_REQUIRE(detached.ok());
  BOOST_TEST(detached->branch == "");
  auto bad = prepare_workspace({WorkspaceKind::checkout, host.repo.string(), "no-such-branch", (state.path / "c").string()});
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.message().find("'no-such-branch'") != std::string::npos, bad.message());
  BOOST_TEST(bad.message().find(host.repo.string()) != std::string::npos, bad.message());
  BOOST_TEST(!fs::exists(state.path / "c"));
  auto not_git = prepare_workspace({WorkspaceKind::checkout, state.str(), "", (state.path / "d").string()});
  BOOST_REQUIRE(!not_git.ok());
  BOOST_TEST(not_git.message().find("not a git repository") != std::string::npos, not_git.message());
}

BOOST_AUTO_TEST_CASE(a_prepared_workspace_is_reused_with_the_steps_changes_and_a_cut_short_one_is_redone) {
  HostRepo host;
  TempDir state;
  WorkspaceSpec spec{WorkspaceKind::checkout, host.repo.string(), "", (state.path / "ws").string()};
  auto w = prepare_workspace(spec);
  BOOST_REQUIRE(w.ok());
  write_file(fs::path(w->path) / "made-by-step-1.txt", "x");
  auto again = prepare_workspace(spec);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(fs::exists(fs::path(again->path) / "made-by-step-1.txt"));
  BOOST_TEST(again->commit == w->commit);
  BOOST_TEST(again->read_only == w->read_only);
  // A crash during preparation leaves no marker: the next one starts over.
  WorkspaceSpec half{WorkspaceKind::checkout, host.repo.string(), "", (state.path / "half").string()};
  write_file(state.path / "half" / "partial-file", "x");
  auto redone = prepare_workspace(half);
  BOOST_REQUIRE(redone.ok());
  BOOST_TEST(!fs::exists(state.path / "half" / "partial-file"));
  BOOST_TEST(fs::exists(state.path / "half" / "README.md"));
}

BOOST_AUTO_TEST_CASE(empty_and_repo_workspaces) {
  HostRepo host;
  TempDir state;
  auto e = prepare_workspace({WorkspaceKind::empty, host.repo.string(), "", (state.path / "e").string()});
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(fs::is_empty(e->path));
  auto r = prepare_workspace({WorkspaceKind::repo, host.repo.string(), "", ""});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->path == host.repo.string());
  WorkspaceKind k;
  BOOST_TEST(parse_workspace_kind("checkout", k));
  BOOST_TEST(!parse_workspace_kind("clone", k));
}

BOOST_AUTO_TEST_SUITE_END()
