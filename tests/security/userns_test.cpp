// Two namespace sandboxes of one engine, from the side of a hostile step in
// the first: it must not reach the second (signals, ptrace, /proc, its mount
// namespace, its files) nor the engine, and it must hold no capability in
// any namespace that owns the prepared root or the other sandbox's
// namespaces. Run with the engine as root (this process's shared sandbox)
// and as an ordinary user (a forked copy of this process that becomes
// hearth-test and makes a sandbox of its own: its held user namespace, its
// prepared root). Probes exit 66 when an attack WORKED.
#include <fcntl.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/sandbox.h"
#include "tests/support/shell.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

// What a scenario found wrong; empty when every attack failed as it should.
using Findings = std::string;
using Scenario = std::function<Findings(Sandbox&)>;

// A command started in a sandbox and followed on `loop`. No Boost.Test
// macro here: scenarios also run in a forked child.
struct Running {
  std::string output;
  bool ended = false;
  int status = -1;
  Process* process = nullptr;
  std::string error;  // spawn failed, or the sandbox could not be set up (ExitInfo::failure)

  Running(uv_loop_t* loop, Sandbox& box, const ExecSpec& spec) {
    auto p = box.spawn(loop, spec, {[this](std::string_view c) { output.append(c); }, [this](const ExitInfo& e) {
                                      status = e.exit_status;
                                      if (!e.failure.empty()) error = e.failure;
                                      ended = true;
                                    }});
    if (p) process = *p;
    else {
      error = p.message();
      ended = true;
    }
  }
};

// Runs `loop` until `done` or 20 s; false on timeout.
bool run_until(uv_loop_t* loop, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) noexcept {}, 50, 50);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

// A sandbox that prints `ready` once it has done `before` and then sleeps
// as `sleep <marker>` (its host pid found by that command line).
ExecSpec sleeper(const std::string& marker, const std::string& workspace, const std::string& before = "") {
  Isolation iso;
  iso.workspace = workspace;
  return bash_spec(before + "echo ready; exec sleep " + marker, iso);
}

// The inode of a namespace descriptor or file.
ino_t ns_inode(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// True when `owner` (a user namespace) is a strict descendant of the user
// namespace whose inode is `ancestor`: walks up with NS_GET_PARENT until
// the kernel refuses (the top of what this process may see).
bool strictly_below(int owner, ino_t ancestor) {
  int fd = ::dup(owner);
  bool below = false;
  while (fd >= 0) {
    int parent = ::ioctl(fd, NS_GET_PARENT);
    ::close(fd);
    fd = parent;
    if (fd >= 0 && ns_inode(fd) == ancestor) below = true;
  }
  return below;
}

// The effective capabilities of a host process, as /proc shows them.
std::string cap_eff(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("CapEff:\t");
  return at == std::string::npos ? "" : status.substr(at + 8, 16);
}

// Whether the process `pid` (in user namespace S, with CapEff) holds a
// capability in the user namespace `owner`: it does if owner is S and its
// effective set is not empty, or if owner lies below S (the kernel gives
// S's members, or S's creator, every capability there). Appends to `found`.
void check_no_capability(pid_t pid, int owner, const std::string& what, Findings& found) {
  int self = ::open(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    found += "cannot open the step's user namespace; ";
    return;
  }
  ino_t s = ns_inode(self);
  ::close(self);
  bool holds = (ns_inode(owner) == s && cap_eff(pid) != "0000000000000000") || strictly_below(owner, s);
  if (holds) found += "the step holds capabilities in the owner of " + what + "; ";
}

// The user namespace owning the namespace `ns_fd`, or -1.
int owner_of(int ns_fd) { return ::ioctl(ns_fd, NS_GET_USERNS); }

std::string unique_marker() {
  static int n = 0;
  return std::to_string(4100000 + (::getpid() % 10000) * 10 + n++);
}

// A sandbox B of `box` sleeps, with a secret in its /tmp and workspace; a
// sandbox A, told B's host pids, its workspace's host path and the engine's
// pid (as if they had leaked), tries to signal, trace and open B and the
// engine, to find B in /proc, to read B's files, to use a descriptor of a
// namespace, and to plant a file in the parts of the root every sandbox
// shares (the prepared root's copies). B must still be running afterwards.
Findings another_sandbox_is_out_of_reach(Sandbox& box) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  TempDir ws_a, ws_b;
  ::chmod(ws_a.str().c_str(), 0777);
  ::chmod(ws_b.str().c_str(), 0777);
  std::string marker = unique_marker();
  Findings found;
  Running b(&loop, box, sleeper(marker, ws_b.str(), "echo secret-b > /tmp/secret; echo secret-b > /workspace/secret; "));
  if (!run_until(&loop, [&] { return b.output.find("ready") != std::string::npos || b.ended; }) || b.ended)
    return "sandbox B did not start: " + b.error + b.output;
  // "ready" comes just before the exec of sleep: wait for the sleep itself.
  pid_t b_pid = 0;
  // Its output can come before the loop has taken the child over (the
  // clone's completion): wait for its pid too.
  if (!run_until(&loop,
                 [&] {
                   return ((b_pid = host_pid_with_cmdline("sleep " + marker)) != 0 && b.process->pid() != 0) ||
                          b.ended;
                 }) ||
      !b.process || b.ended)
    return "B's command not found on the host";
  ExecSpec a = bash_spec(
      "w=0\n"
      "for p in $B_PID $B_INIT $ENGINE; do\n"
      "  kill -0 $p 2>/dev/null && { echo \"signalled $p\"; w=1; }\n"
      "  perl -e '$r = syscall(434, $ARGV[0], 0); exit($r >= 0 ? 66 : 0)' $p || { echo \"pidfd of $p\"; w=1; }\n"
      "  perl -e '$r = syscall(101, 16, $ARGV[0], 0, 0); exit($r >= 0 ? 66 : 0)' $p || { echo \"traced $p\"; w=1; }\n"
      "  cat /proc/$p/root/tmp/secret /proc/$p/environ 2>/dev/null && { echo \"read /proc/$p\"; w=1; }\n"
      "done\n"
      "grep -las '^sleep' /proc/[0-9]*/cmdline && { echo 'sees B in /proc'; w=1; }\n"
      "cat /tmp/secret \"$B_WS/secret\" 2>/dev/null && { echo \"read B's files\"; w=1; }\n"
      "for f in /proc/self/fd/*; do\n"
      "  l=$(readlink $f)\n"
      "  case $l in user:*|mnt:*|net:*|pid:*|uts:*|ipc:*|cgroup:*) echo \"holds $l\"; w=1;; esac\n"
      "done\n"
      "for d in /etc /dev /usr /; do touch $d/planted-$MARK 2>/dev/null && { echo \"planted in $d\"; w=1; }; done\n"
      "echo probed\n"
      "[ $w = 1 ] && exit 66; exit 0\n",
      [&] {
        Isolation iso;
        iso.workspace = ws_a.str();
        return iso;
      }());
  a.env.push_back("B_PID=" + std::to_string(b_pid));
  a.env.push_back("B_INIT=" + std::to_string(b.process->pid()));
  a.env.push_back("ENGINE=" + std::to_string(::getpid()));
  a.env.push_back("B_WS=" + ws_b.str());
  a.env.push_back("MARK=" + marker);
  Running probe(&loop, box, a);
  if (!run_until(&loop, [&] { return probe.ended; })) found += "the probe did not end; ";
  if (!probe.error.empty()) found += "the probe did not start: " + probe.error + "; ";
  else if (probe.status != 0 || probe.output.find("probed") == std::string::npos)
    found += "the attack worked or the probe did not run (status " + std::to_string(probe.status) + "): " + probe.output;
  // What A planted (had it worked) would show in a third sandbox's root.
  Running c(&loop, box, bash_spec("ls /etc/planted-" + marker + " /dev/planted-" + marker + " 2>/dev/null; true"));
  if (!run_until(&loop, [&] { return c.ended; }) || c.output.find("planted") != std::string::npos)
    found += "a file planted by one sandbox is in another's root; ";
  if (b.ended) found += "B was ended by A; ";
  if (b.process) b.process->kill();
  if (!run_until(&loop, [&] { return b.ended; })) found += "B did not end; ";
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) found += "a handle was left open; ";
  return found;
}

// Two sandboxes A and B of `box` run side by side. From inside, A tries to
// get a descriptor of a user namespace above its own (the owner of its mount,
// pid, network, uts, ipc and cgroup namespaces; its user namespace's
// parent). From the engine's side, A must hold no capability in the user
// namespace that owns the prepared root (the engine's namespace
// descriptors) or any of B's namespaces.
Findings no_capability_over_what_is_shared(Sandbox& box) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string ma = unique_marker(), mb = unique_marker();
  Findings found;
  std::string probe =
      "perl -e 'my $w = 0;\n"
      "  open(my $me, \"<\", \"/proc/self/ns/user\") or die; my $mine = (stat($me))[1];\n"
      "  for my $k (qw(mnt pid net uts ipc cgroup user)) {\n"
      "    open(my $f, \"<\", \"/proc/self/ns/$k\") or next;\n"
      "    my $req = $k eq \"user\" ? 0xb702 : 0xb701;\n"
      "    my $fd = syscall(16, fileno($f), $req, 0);\n"
      "    if ($fd >= 0) { open(my $g, \"<&=\", $fd); my $ino = (stat($g))[1];\n"
      "      if ($ino != $mine) { print \"reached the user namespace above, through $k\\n\"; $w = 1 } }\n"
      "  }\n"
      "  exit($w ? 66 : 0)' || exit 66\n";
  Running b(&loop, box, sleeper(mb, ""));
  Running a(&loop, box, sleeper(ma, "", probe));
  if (!run_until(&loop, [&] {
        return (a.output.find("ready") != std::string::npos || a.ended) &&
               (b.output.find("ready") != std::string::npos || b.ended);
      }) ||
      a.ended || b.ended)
    return "a sandbox did not start or the probe reached a namespace above its own: A (status " +
           std::to_string(a.status) + ") " + a.error + a.output + "; B (status " + std::to_string(b.status) + ") " +
           b.error + b.output;
  pid_t a_pid = 0, b_pid = 0;
  if (!run_until(&loop, [&] {
        if (!a_pid) a_pid = host_pid_with_cmdline("sleep " + ma);
        if (!b_pid) b_pid = host_pid_with_cmdline("sleep " + mb);
        return (a_pid && b_pid) || a.ended || b.ended;
      }) ||
      a.ended || b.ended)
    return "a sandbox's command not found on the host";
  for (const char* kind : {"mnt", "pid", "net", "uts", "ipc", "cgroup", "user"}) {
    int ns = ::open(("/proc/" + std::to_string(b_pid) + "/ns/" + kind).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) {
      found += std::string("cannot open B's ") + kind + " namespace; ";
      continue;
    }
    int owner = std::string(kind) == "user" ? ::dup(ns) : owner_of(ns);
    if (owner < 0) found += std::string("no owner of B's ") + kind + " namespace; ";
    else check_no_capability(a_pid, owner, std::string("B's ") + kind + " namespace", found);
    if (owner >= 0) ::close(owner);
    ::close(ns);
  }
  // The engine's own namespace descriptors: the prepared roots (and, run by
  // an ordinary user, its held user namespace; as root, network namespaces
  // made ahead).
  int held = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string link = std::filesystem::read_symlink(e.path(), ec).string();
    if (ec || (link.rfind("mnt:", 0) != 0 && link.rfind("user:", 0) != 0)) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    int owner = link.rfind("user:", 0) == 0 ? ::dup(fd) : owner_of(fd);
    if (owner >= 0) {
      check_no_capability(a_pid, owner, "the engine's " + link, found);
      ++held;
      ::close(owner);
    }
    ::close(fd);
  }
  if (held == 0) found += "no prepared root held by the engine; ";
  for (Running* r : {&a, &b})
    if (r->process) r->process->kill();
  if (!run_until(&loop, [&] { return a.ended && b.ended; })) found += "the sandboxes did not end; ";
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) found += "a handle was left open; ";
  return found;
}

// Many sandboxes asked for at once: their children are made on several
// threads of the pool, each sharing the engine's memory until it execs,
// and each changes its credentials there. Every one must start and run.
Findings sandboxes_started_together_all_start(Sandbox& box) {
  Findings found;
  uv_loop_t loop;
  uv_loop_init(&loop);
  TempDir ws;
  constexpr int kBoxes = 48;
  std::vector<std::unique_ptr<Running>> runs;
  for (int i = 0; i < kBoxes; ++i) {
    Isolation iso;
    iso.workspace = ws.str();
    runs.push_back(std::make_unique<Running>(&loop, box, bash_spec("echo started", iso)));
  }
  auto all_ended = [&] {
    for (auto& r : runs)
      if (!r->ended) return false;
    return true;
  };
  if (!run_until(&loop, all_ended)) found += "not every sandbox ended; ";
  int failed = 0;
  std::string first;
  for (auto& r : runs)
    if (r->status != 0 || r->output != "started\n") {
      if (failed++ == 0) first = "status " + std::to_string(r->status) + ": " + r->error + r->output;
    }
  if (failed > 0) found += std::to_string(failed) + " of " + std::to_string(kBoxes) + " did not start; first: " + first;
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) found += "; a handle was left open";
  return found;
}

// Runs `scenario` in a forked copy of this process that has become `pw`
// (no groups, no capabilities) and made a namespace sandbox of its own, as
// an engine run by that user would. Returns its findings.
Findings as_ordinary_user(const passwd* pw, const Scenario& scenario) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "cannot create a pipe";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(out[0]);
    // Nothing of the root engine's (its sandbox's namespaces) stays open.
    if (::dup3(out[1], 3, O_CLOEXEC) != 3 || ::close_range(4, ~0U, 0) != 0) _exit(2);
    std::string r;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        ::setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
      r = "cannot become " + std::string(pw->pw_name);
    else if (auto box = make_namespace_sandbox(); !box)
      r = "no sandbox for an ordinary user: " + box.message();
    else
      r = scenario(**box);
    (void)!::write(3, r.data(), r.size());
    _exit(0);
  }
  ::close(out[1]);
  std::string r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) r += " (the child ended abnormally)";
  return r;
}

// The scenario with the engine as root, then as the ordinary user hearth-test.
void both_ways(const Scenario& scenario) {
  if (without_namespaces()) return;
  Findings as_root = scenario(namespace_box());
  BOOST_TEST(as_root.empty(), "engine as root: " << as_root);
  if (const passwd* pw = unprivileged_user()) {
    Findings as_user = as_ordinary_user(pw, scenario);
    BOOST_TEST(as_user.empty(), "engine run by an ordinary user: " << as_user);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(userns_security)

BOOST_AUTO_TEST_CASE(a_step_cannot_reach_another_sandbox_or_the_engine) {
  both_ways(another_sandbox_is_out_of_reach);
}

BOOST_AUTO_TEST_CASE(a_step_holds_no_capability_over_the_prepared_root_or_another_sandbox) {
  both_ways(no_capability_over_what_is_shared);
}

BOOST_AUTO_TEST_CASE(sandboxes_started_at_once_from_several_threads_all_start) {
  both_ways(sandboxes_started_together_all_start);
}

BOOST_AUTO_TEST_SUITE_END()
