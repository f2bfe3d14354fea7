// Every child Hearth starts gives up what it inherited through one routine
// (sandbox/child_setup.h). The other suites already attack three of its four
// users: a step in the namespace sandbox and under the local backend, and a
// granted program, each with a descriptor Hearth's parent left open
// (sandbox_surface_security), and the step's and the granted program's host
// uid (sandbox_root_security, jail_security). This suite attacks the fourth,
// a command of a namespace session (an agent's bash call, started by
// hearth-stepbox inside the sandbox): it holds no descriptor beyond its
// stdio, neither one this process left open nor the helper's control
// socket, and is neither host root nor capable. Probes exit 66 when the
// attack WORKED, so one that fails to run cannot pass.
#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

using Outcome = Exited;
const std::string kSecret = "host-secret-52c0e7a1b4";

// A namespace session opened by a fresh sandbox (so the helper starts while
// the test's descriptors are open); closed at the end.
std::unique_ptr<Sandbox> fresh_box() {
  auto made = make_namespace_sandbox();
  BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.message()));
  return std::move(*made);
}
struct Session : SessionFixture {
  Session() : SessionFixture(fresh_box()) {}
};

// A descriptor this process leaves open across exec (no close-on-exec), as
// a careless parent of Hearth would (`exec 7<file; hearth ...`); closed again
// at the end of the test.
struct LeftOpen {
  static constexpr int kFd = 7;
  TempDir dir;
  LeftOpen() {
    write_file(dir.path / "secret", kSecret + "\n");
    int fd = ::open((dir.path / "secret").c_str(), O_RDONLY);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::dup2(fd, kFd) == kFd);  // dup2 leaves close-on-exec off
    ::close(fd);
  }
  ~LeftOpen() { ::close(kFd); }
};

// The session command's descriptors above 2 (bash's own /proc/self): each
// one open is named, and a readable one is read.
const char* kFdProbe =
    "found=0; for fd in $(seq 3 255); do "
    "  if [ -e /proc/self/fd/$fd ]; then found=1; echo \"open $fd: $(readlink /proc/self/fd/$fd)\"; "
    "    timeout 1 cat <&$fd 2>/dev/null | head -c 200; fi; "
    "done; "
    "[ $found = 0 ] && echo 'no inherited descriptor'; exit $((found * 66))";

// The Uid line of a host process whose command line is `cmdline`, or "".
std::string host_uid_of(const std::string& cmdline) {
  pid_t pid = host_pid_with_cmdline(cmdline);
  return pid == 0 ? "" : host_uid_line(pid);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spawner_security)

BOOST_AUTO_TEST_CASE(a_session_command_holds_no_descriptor_beyond_its_stdio) {
  LeftOpen left;
  Session s;
  Outcome o = s.run(kFdProbe);
  BOOST_TEST(o.exit.exit_status != kWorked, "a session command inherited a descriptor: " << o.output);
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output.find("no inherited descriptor") != std::string::npos, o.output);
  BOOST_TEST(o.output.find(kSecret) == std::string::npos, o.output);
}

BOOST_AUTO_TEST_CASE(a_session_command_is_not_host_root_and_has_no_capability) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("SKIPPED: the engine is not root here");
    return;
  }
  Session s;
  // Inside: no capability in any set, no way to gain one through exec.
  Outcome inside = s.run(
      "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; "
      "grep -qE '^Cap(Inh|Prm|Eff|Bnd|Amb):\\s*0*[1-9a-f]' /proc/self/status && exit 66; "
      "grep -qE '^NoNewPrivs:\\s*1' /proc/self/status || exit 66; echo checked");
  BOOST_TEST(inside.exit.exit_status == 0, inside.output);
  BOOST_TEST(inside.output.find("checked") != std::string::npos, inside.output);
  // Outside: the command's host ids, read while it runs.
  auto running = s.start(bash_spec("exec sleep 42519"));
  std::string line;
  run_loop_until(&s.loop, [&] { return !(line = host_uid_of("sleep 42519")).empty() || running->exits > 0; });
  BOOST_TEST_MESSAGE(line);
  BOOST_REQUIRE(line.rfind("Uid:\t", 0) == 0);
  std::istringstream ids(line.substr(5));
  int n = 0;
  for (uid_t id; ids >> id; ++n) BOOST_TEST(id != 0u, "a session command is host root: " << line);
  BOOST_TEST(n == 4);
}

BOOST_AUTO_TEST_SUITE_END()
