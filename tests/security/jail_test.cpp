// The jail of granted programs, seen by an attacker. A granted program runs
// on the host's side with the step's secrets, so whatever it can be steered
// to do (by a configuration file it reads from the workspace, by an option
// the broker's argument check does not know) must stay inside the workspace:
// the host is read-only around it, the engine's state is out of its sight,
// and as root it is not root. Here the granted program is a small tool that
// trusts a file in the workspace, as npm trusts .npmrc, and the step writes
// that file.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"

using hearth::RunStatus;
using namespace hearth::testing;

namespace {

// The trusted tool: does what the workspace file named by its argument says.
const char* kTool = R"SH(#!/bin/sh
case "$1" in
  whoami) echo "uid=$(id -u)" ;;
  write) target=$(cat "$2"); if echo pwned > "$target"; then echo "wrote=$target"; else echo "write-failed"; fi ;;
  read) if cat "$(cat "$2")"; then echo "read-ok"; else echo "read-failed"; fi ;;
  inside) echo mine > made-by-tool && echo "inside-ok" ;;
  caps) grep -E '^Cap(Prm|Eff|Bnd|Amb):' /proc/self/status ;;
esac
)SH";

struct JailSetup {
  TempDir host;  // the tool and the host's bait, outside the workspace
  fs::path tool, outside, secret;
  std::unique_ptr<TempRepo> repo;

  JailSetup() {
    tool = host.path / "tool";
    write_file(tool, kTool);
    auto rx = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
              fs::perms::others_exec;
    fs::permissions(tool, rx);
    fs::permissions(host.path, rx);
    // Writable by anyone on the host: only the jail's read-only host stops a write.
    outside = host.path / "outside";
    fs::create_directories(outside);
    fs::permissions(outside, fs::perms::all);
    fs::create_directories(host.path / "private");
    fs::permissions(host.path / "private", fs::perms::owner_all);
    secret = host.path / "private" / "secret";
    write_file(secret, "host-secret-4d2a\n");
  }

  // The workflow: one namespace step granted the tool, running `run`. The
  // repository has a .hearth/workflows/kept.toml of its own.
  TempRepo& workflow(const std::string& run) {
    repo = std::make_unique<TempRepo>(
        workflow_toml({{.id = "attack", .run = run + "\n", .more = R"(commands = ["tool"])"}},
                      sandbox_head("namespace") + command_toml("tool", tool.string(), {"whoami", "write *", "read *", "inside", "caps"})));
    fs::create_directories(repo->root() / ".hearth" / "workflows");
    write_file(kept(), "# the repository's own\n");
    return *repo;
  }
  fs::path kept() const { return repo->root() / ".hearth" / "workflows" / "kept.toml"; }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(jail_security)

BOOST_AUTO_TEST_CASE(a_steered_granted_program_cannot_write_on_the_host_nor_change_dot_hearth) {
  JailSetup s;
  s.workflow(R"(
echo ')" + (s.outside / "planted").string() + R"(' > host-target
tool write host-target
tool write workflow-target
tool inside
)");
  write_file(s.repo->root() / "workflow-target", s.kept().string() + "\n");
  auto r = s.repo->run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(!fs::exists(s.outside / "planted"), "the granted program wrote on the host");
  BOOST_TEST(hearth::testing::read_file(s.kept()) == "# the repository's own\n", "the granted program changed .hearth");
  BOOST_TEST(!has(out, "wrote="), out);
  BOOST_TEST(has(out, "write-failed"), out);
  BOOST_TEST(has(out, "inside-ok"), out);
  // What it made in the workspace belongs to the workspace's owner on the host.
  struct stat made {}, ws {};
  BOOST_REQUIRE(::stat((s.repo->root() / "made-by-tool").c_str(), &made) == 0);
  BOOST_REQUIRE(::stat(s.repo->root().c_str(), &ws) == 0);
  BOOST_TEST(made.st_uid == ws.st_uid);
}

BOOST_AUTO_TEST_CASE(a_steered_granted_program_reads_no_host_secret_is_not_root_and_has_no_capability) {
  JailSetup s;
  s.workflow(R"(
echo ')" + s.secret.string() + R"(' > secret-target
tool read secret-target
tool whoami
tool caps
)");
  auto r = s.repo->run();
  std::string out = r.succeeded_output("attack");
  BOOST_TEST(!has(out, "host-secret-4d2a"), out);
  BOOST_TEST(has(out, "read-failed"), out);
  BOOST_TEST(has(out, "uid="), out);
  if (::geteuid() == 0) BOOST_TEST(!has(out, "uid=0\n"), "a granted program runs as root: " << out);
  // No capability, and none it could regain by exec'ing a file that has some.
  for (const char* set : {"CapPrm", "CapEff", "CapBnd", "CapAmb"})
    BOOST_TEST(has(out, std::string(set) + ":\t0000000000000000"), set << " is not empty: " << out);
}

BOOST_AUTO_TEST_SUITE_END()
