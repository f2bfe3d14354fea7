// The seccomp programs a sandboxed command runs under. They are compiled once
// per process (sandbox/seccomp_filter.h) and installed in each sandbox's
// child from that copy: what the kernel holds for a command must be, byte for
// byte, what libseccomp compiles from the lists now, in the same order, and
// nothing else.
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp_filter.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

// The filter `index` of a stopped tracee (the kernel counts from the first
// installed: 0), or an empty program.
std::vector<sock_filter> filter_of(pid_t pid, long index) {
  long n = ::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, nullptr);
  if (n <= 0) return {};
  std::vector<sock_filter> prog(static_cast<size_t>(n));
  if (::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, prog.data()) != n) return {};
  return prog;
}

bool same(const std::vector<sock_filter>& a, const std::vector<sock_filter>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(sock_filter)) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(seccomp_filter)

// Reading another process's filters takes CAP_SYS_ADMIN on the host: as root.
BOOST_AUTO_TEST_CASE(a_command_runs_under_exactly_the_programs_libseccomp_compiles) {
  if (::geteuid() != 0 || without_namespaces()) return;
  auto fresh = build_seccomp_filter();
  BOOST_REQUIRE_MESSAGE(fresh.ok(), (fresh.ok() ? "" : fresh.message()));
  std::string marker = std::to_string(4300000 + ::getpid() % 100000);
  Exited o;
  LoopFixture f;
  // A second sandbox first: the programs of the first compile are reused.
  spawn_to_end(namespace_box(), bash_spec("true"));
  auto p = namespace_box().spawn(&f.loop, bash_spec("exec sleep " + marker), filling(o));
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  pid_t pid = 0;
  f.run_until([&] { return (pid = host_pid_with_cmdline("sleep " + marker)) != 0 || o.exits > 0; });
  BOOST_REQUIRE_MESSAGE(pid != 0, "the command never ran: " << o.output);

  BOOST_REQUIRE_MESSAGE(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0, "seize: " << std::strerror(errno));
  BOOST_REQUIRE(::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) == 0);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, __WALL) == pid);
  auto first = filter_of(pid, 0);
  auto second = filter_of(pid, 1);
  errno = 0;
  long third = ::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 2, nullptr);
  int third_errno = errno;
  ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
  ::kill(pid, SIGKILL);  // the command's end ends its sandbox

  // Installed in order: the allow-list first, the deny-list over it.
  BOOST_TEST(same(first, fresh->allow), "the allow-list installed (" << first.size() << " instructions) differs from "
                                        << "a fresh compile (" << fresh->allow.size() << ")");
  BOOST_TEST(same(second, fresh->deny), "the deny-list installed (" << second.size() << " instructions) differs from "
                                        << "a fresh compile (" << fresh->deny.size() << ")");
  BOOST_TEST((third < 0 && third_errno == ENOENT), "a third filter is installed");
}

BOOST_AUTO_TEST_SUITE_END()
