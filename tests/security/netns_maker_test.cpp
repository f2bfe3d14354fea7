// The network namespaces a root engine makes ahead (sandbox/netns_pool.h),
// from the attacker's side: a sandbox never shares a network namespace with
// another one, the process that makes them ("hearth-netns", a child of the
// engine) holds nothing of the engine's, and killing it costs no sandbox
// anything. Cases about a root engine say so and pass trivially otherwise
// (the suite runs as root in CI).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <set>

#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using hearth::testing::child_named;
using hearth::testing::host_pid_with_cmdline;
using hearth::testing::read_file;
using hearth::testing::run_loop_until;

namespace {

constexpr const char* kMaker = "hearth-netns";

bool as_root() {
  if (::geteuid() == 0) return true;
  BOOST_TEST_MESSAGE("SKIPPED: network namespaces are made ahead only by an engine running as root");
  return false;
}

std::unique_ptr<Sandbox> new_box() {
  auto made = make_namespace_sandbox();
  BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.message()));
  return std::move(*made);
}

ExecSpec bash(const std::string& script) {
  ExecSpec spec;
  spec.argv = {"bash", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin:/usr/sbin", "LANG=C.UTF-8"};
  spec.cwd = kWorkspaceInside;
  spec.kill_grace = std::chrono::milliseconds(200);
  return spec;  // network none
}

// What a sandbox sees of its network: its namespace and its links, one per line.
const char* kShowNetwork = "readlink /proc/self/ns/net; ip -o link | cut -d' ' -f2-3";

struct Outcome {
  std::string output;
  int64_t status = -1;
};

Outcome run(Sandbox& box, const std::string& script) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Outcome o;
  auto p = box.spawn(&loop, bash(script), {[&](std::string_view c) { o.output.append(c); },
                                           [&](const ExitInfo& e) { o.status = e.exit_status; }});
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
  return o;
}

// Polls `holds` for up to 5 s: for a state of another process, which has no
// event to wait on.
bool within_5s(const std::function<bool()>& holds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!holds() && std::chrono::steady_clock::now() < deadline) usleep(1000);
  return holds();
}

// The engine's netns maker, which the second sandbox with its own network
// starts (the first makes its own namespace; the maker names itself once
// it runs); fails the test when there is none.
pid_t maker_of(Sandbox& box) {
  for (int i = 0; i < 2; ++i) BOOST_REQUIRE(run(box, "true").status == 0);
  pid_t maker = 0;
  within_5s([&] { return (maker = child_named(kMaker)) != 0; });
  BOOST_REQUIRE_MESSAGE(maker != 0, "no " << kMaker << " child of the engine after a sandbox with network none");
  return maker;
}

// Waits until the maker has answered every request and waits for the next
// one (blocked in read() on its socket, descriptor 3): between requests it
// holds only what it kept from the engine.
void wait_until_idle(pid_t maker) {
  std::string reading = std::to_string(SYS_read) + " 0x3 ";
  bool idle = within_5s([&] { return read_file("/proc/" + std::to_string(maker) + "/syscall").rfind(reading, 0) == 0; });
  BOOST_REQUIRE_MESSAGE(idle, "the maker never waited for a request");
}

std::string net_namespace_of(pid_t pid) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/net", ec).string();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(netns_maker_security)

// Several sandboxes, each started once the one before runs, all kept alive
// until the end (so the kernel cannot reuse a namespace's inode number):
// each sees a network namespace of its own, not the host's, not a
// neighbour's, with only `lo`, up.
BOOST_AUTO_TEST_CASE(each_sandbox_gets_its_own_fresh_network_namespace) {
  if (!as_root()) return;
  auto box = new_box();
  maker_of(*box);  // the pool is running: what follows comes from it while it keeps up
  uv_loop_t loop;
  uv_loop_init(&loop);
  constexpr int kSandboxes = 4;
  std::vector<std::string> seen(kSandboxes);
  std::vector<Process*> running;
  int ended = 0;
  for (int i = 0; i < kSandboxes; ++i) {
    std::string sleeper = "sleep 4247" + std::to_string(i);
    auto p = box->spawn(&loop, bash(std::string(kShowNetwork) + "; exec " + sleeper),
                        {[&seen, i](std::string_view c) { seen[i].append(c); }, [&](const ExitInfo&) { ++ended; }});
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    running.push_back(*p);
    run_loop_until(&loop, [&] { return host_pid_with_cmdline(sleeper) != 0; });
  }
  for (auto* p : running) p->kill();
  run_loop_until(&loop, [&] { return ended == kSandboxes; });
  BOOST_TEST(uv_loop_close(&loop) == 0);

  std::set<std::string> namespaces;
  std::string host = net_namespace_of(::getpid());
  for (auto& out : seen) {
    BOOST_TEST_MESSAGE(out);
    std::string ns = out.substr(0, out.find('\n'));
    BOOST_TEST(ns.rfind("net:[", 0) == 0, "no network namespace in: " << out);
    BOOST_TEST(ns != host, "a sandbox is in the host's network namespace");
    namespaces.insert(ns);
    BOOST_TEST(out.substr(out.find('\n') + 1) == "lo: <LOOPBACK,UP,LOWER_UP>\n");
  }
  BOOST_TEST(namespaces.size() == static_cast<size_t>(kSandboxes), "two sandboxes shared a network namespace");
}

// An attacker who kills the maker (or the kernel refusing more namespaces)
// must not stop any step: later sandboxes make their own, and the dead maker
// is reaped rather than left as a zombie.
BOOST_AUTO_TEST_CASE(killing_the_maker_leaves_later_sandboxes_working) {
  if (!as_root()) return;
  auto box = new_box();
  pid_t maker = maker_of(*box);
  BOOST_REQUIRE(::kill(maker, SIGKILL) == 0);
  std::set<std::string> namespaces;
  for (int i = 0; i < 4; ++i) {
    auto o = run(*box, kShowNetwork);
    BOOST_TEST(o.status == 0, o.output);
    BOOST_TEST(o.output.substr(o.output.find('\n') + 1) == "lo: <LOOPBACK,UP,LOWER_UP>\n");
  }
  BOOST_TEST(child_named(kMaker) == 0, "the killed maker was not reaped (or came back)");
}

// A descriptor the engine's parent left open (a host file, a pipe) must not
// live on in the maker, which runs as host root beside every sandbox.
BOOST_AUTO_TEST_CASE(the_maker_holds_only_its_socket) {
  if (!as_root()) return;
  int file = ::open("/etc/hostname", O_RDONLY);  // inheritable, as a caller's would be
  int pipe_ends[2];
  BOOST_REQUIRE(::pipe(pipe_ends) == 0);
  auto box = new_box();
  pid_t maker = maker_of(*box);
  wait_until_idle(maker);
  std::vector<std::string> held;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(maker) + "/fd"))
    held.push_back(std::filesystem::read_symlink(e.path()).string());
  BOOST_TEST(held.size() == 1u, "the maker holds " << held.size() << " descriptors");
  for (auto& target : held) BOOST_TEST(target.rfind("socket:[", 0) == 0, "the maker holds " << target);
  ::close(file);
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
}

// The state letter of a process (/proc/PID/stat), or 0 when it is gone.
char state_of(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || stat.size() < close + 3 ? 0 : stat[close + 2];
}

// Destroying the sandbox kills its maker at once (it never answers another
// request) without waiting for its exit; the next pool reaps it, so nothing
// of the engine's outlives it, not even a zombie.
BOOST_AUTO_TEST_CASE(the_maker_ends_with_the_sandbox) {
  if (!as_root()) return;
  auto box = new_box();
  pid_t maker = maker_of(*box);
  box.reset();
  BOOST_TEST(within_5s([&] {
               char s = state_of(maker);
               return s == 0 || s == 'Z';
             }),
             "the maker still runs after its sandbox was destroyed (state " << state_of(maker) << ")");
  auto next = new_box();
  pid_t second = maker_of(*next);
  BOOST_TEST(second != maker);
  BOOST_TEST(state_of(maker) == 0, "the killed maker was never reaped");
}

// What the engine holds of its own: live children (not zombies) and
// descriptors of mount namespaces (a prepared root).
struct Held {
  std::set<pid_t> children;
  int mount_namespaces = 0;
};

Held held_by_engine() {
  Held held;
  for (auto& c : hearth::testing::children())
    if (c.state != 'Z') held.children.insert(c.pid);
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec))
    if (std::filesystem::read_symlink(e.path(), ec).string().rfind("mnt:[", 0) == 0) ++held.mount_namespaces;
  return held;
}

// A process that runs one sandbox (a run with one shell step) pays for
// nothing made for later ones: no maker, no prepared root. The second
// sandbox starts both.
BOOST_AUTO_TEST_CASE(one_sandbox_makes_nothing_ahead_and_a_second_starts_the_maker) {
  if (!as_root()) return;
  Held before = held_by_engine();
  auto box = new_box();
  auto o = run(*box, kShowNetwork);
  BOOST_TEST(o.status == 0, o.output);
  BOOST_TEST(o.output.substr(o.output.find('\n') + 1) == "lo: <LOOPBACK,UP,LOWER_UP>\n");
  // A child of an earlier case may still be dying; what counts is a new
  // one that stays (a maker never leaves on its own).
  auto new_children = [&] {
    std::set<pid_t> fresh;
    for (pid_t pid : held_by_engine().children)
      if (!before.children.count(pid)) fresh.insert(pid);
    return fresh;
  };
  BOOST_TEST(within_5s([&] { return new_children().empty(); }), "a child of the engine outlived the only sandbox");
  BOOST_TEST(held_by_engine().mount_namespaces == before.mount_namespaces, "a prepared root was made for one sandbox");
  BOOST_TEST(run(*box, "true").status == 0);
  BOOST_TEST(within_5s([&] { return child_named(kMaker) != 0; }), "no maker after the second sandbox");
  BOOST_TEST(held_by_engine().mount_namespaces > before.mount_namespaces, "no prepared root after the second sandbox");
}

BOOST_AUTO_TEST_SUITE_END()
