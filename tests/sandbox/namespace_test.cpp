// The namespace backend under attack. Each case runs a probe inside the
// sandbox that exits 66 when the attack WORKED, so a probe that fails to run
// at all cannot pass; each also asserts the specific failure it expects.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>

#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

using Outcome = Exited;
Sandbox& box() { return namespace_box(); }

Outcome run(const std::string& script, Isolation iso = {}, std::optional<std::chrono::milliseconds> timeout = {},
            std::chrono::milliseconds grace = std::chrono::milliseconds(200)) {
  return spawn_to_end(box(), bash_spec(script, std::move(iso), timeout, grace));
}

// The probe failed as expected: it ran (not 127), did not report success,
// and printed `expected`.
void refused(const Outcome& o, const std::string& expected) {
  BOOST_TEST(o.exit.exit_status != kWorked, "the attack worked: " << o.output);
  BOOST_TEST(o.exit.exit_status != 127, "the probe did not run: " << o.output);
  BOOST_TEST(o.output.find(expected) != std::string::npos, "expected '" << expected << "' in: " << o.output);
}

// A system call made with perl's syscall(): prints its errno (0 = it worked).
std::string syscall_probe(int nr, const std::string& args = "0, 0, 0, 0, 0") {
  return "perl -e 'my @a = (" + args + "); $r = syscall(" + std::to_string(nr) +
         ", @a); print \"errno=\", ($r == -1 ? $!+0 : 0), \"\\n\"; exit($r == -1 ? 1 : 66)'";
}

// The head of a workflow whose steps share a checkout of the repository.
const std::string kCheckoutHead = "[sandbox]\nkind = \"namespace\"\nworkspace = \"checkout\"\n";

// Checks that `r` reported step `step` succeeded, with output `key` = `value`.
void expect_succeeded_with(const hearth::testing::RunResult& r, const std::string& step, const std::string& key,
                           const std::string& value) {
  bool saw = false;
  for (auto& e : r.events)
    if (e.type == "step.succeeded" && e.step_id == step) {
      saw = true;
      BOOST_TEST(e.data["outputs"][key] == value);
    }
  BOOST_TEST(saw, "no step.succeeded event of " << step);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(namespace_sandbox)

// A sandbox object's first sandbox builds its root in place; the later
// ones copy it from the prepared root made at the second. A command must
// not tell them apart: the same mounts with the same types and options,
// the same files in /, /etc and /dev, the same masked /proc. One difference
// is by design: the prepared root's /etc is a read-only tmpfs of its own
// (also noexec), where the first sandbox's is a directory of its read-only
// root.
BOOST_AUTO_TEST_CASE(the_first_sandbox_and_later_ones_see_the_same_root) {
  auto made = make_namespace_sandbox();
  BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.message()));
  const std::string probe =
      "awk '{ o = $5 \" \" $6 \" \" $9; for (i = 7; $i != \"-\"; i++) o = o \" \" $i; print o, $NF }' "
      "/proc/self/mountinfo | sort; ls -la / /etc /dev | awk '{ print $1, $NF }'; "
      "cat /proc/kcore 2>&1 | head -c 60; echo; ls /proc/sys | head -3; touch /etc/x /usr/x 2>&1; true";
  const std::string etc_mount = "/etc ro,nosuid,nodev,noexec,relatime tmpfs ";
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    auto o = spawn_to_end(**made, bash_spec(probe));
    BOOST_TEST(o.exit.exit_status == 0, o.output);
    seen.push_back(o.output);
  }
  BOOST_TEST(seen[0].find("\n/usr ro,nosuid") != std::string::npos, seen[0]);
  BOOST_TEST(seen[0].find("'/etc/x': Read-only file system") != std::string::npos, seen[0]);
  BOOST_TEST(seen[0].find(etc_mount) == std::string::npos, seen[0]);
  for (int i : {1, 2}) {
    auto at = seen[i].find(etc_mount);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, seen[i]);
    std::string without = seen[i];
    without.erase(at, without.find('\n', at) + 1 - at);
    BOOST_TEST(without == seen[0]);
  }
}

BOOST_AUTO_TEST_CASE(a_command_runs_as_an_ordinary_user_without_privileges) {
  auto o = run("id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; pwd; hostname");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.find("1000\n") == 0);
  BOOST_TEST(o.output.find("CapEff:\t0000000000000000") != std::string::npos);
  BOOST_TEST(o.output.find("CapBnd:\t0000000000000000") != std::string::npos);
  BOOST_TEST(o.output.find("NoNewPrivs:\t1") != std::string::npos);
  BOOST_TEST(o.output.find("Seccomp:\t2") != std::string::npos);
  BOOST_TEST(o.output.find("/workspace\nhearth\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_engines_state_database_is_not_visible) {
  TempDir repo;
  hearth::testing::write_file(repo.path / ".hearth" / "state.db", "SQLite format 3");
  auto o = run("cat " + (repo.path / ".hearth" / "state.db").string() + " && exit 66");
  refused(o, "No such file or directory");
}

BOOST_AUTO_TEST_CASE(root_home_is_not_visible) {
  refused(run("ls /root && exit 66"), "No such file or directory");
}

BOOST_AUTO_TEST_CASE(etc_shadow_is_not_visible) {
  refused(run("cat /etc/shadow && exit 66"), "No such file or directory");
}

BOOST_AUTO_TEST_CASE(host_directories_outside_the_binds_are_not_visible) {
  refused(run("ls /work /home/hearth/.. /var /opt 2>&1; [ -e /work ] || [ -e /var ] && exit 66; echo gone"), "gone");
}

BOOST_AUTO_TEST_CASE(a_read_only_bind_cannot_be_written) {
  TempDir dir;
  hearth::testing::write_file(dir.path / "f", "original");
  Isolation iso;
  iso.binds.push_back({dir.str(), "", false});
  auto o = run("echo changed > " + (dir.path / "f").string() + " && exit 66", iso);
  refused(o, "Read-only file system");
  BOOST_TEST(hearth::testing::read_file(dir.path / "f") == "original");
}

BOOST_AUTO_TEST_CASE(system_directories_and_the_root_are_read_only) {
  refused(run("touch /usr/bin/evil && exit 66"), "Read-only file system");
  // Written by the sandbox's setup: read-only, and (as root) not the command's own either.
  auto passwd = run("echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && exit 66");
  refused(passwd, "/etc/passwd: ");
  BOOST_TEST((passwd.output.find("Read-only file system") != std::string::npos ||
              passwd.output.find("Permission denied") != std::string::npos),
             passwd.output);
  refused(run("mkdir /evil && exit 66"), "Read-only file system");
}

// As root, /usr, /etc and /dev are copies of one prepared root's mounts
// (docs/sandbox.md, "How it is fast"): what one command plants, or tries to,
// must not reach the next command's sandbox.
BOOST_AUTO_TEST_CASE(one_sandbox_leaves_nothing_for_the_next) {
  auto succeeds_with = [](const std::string& script, const std::string& output) {
    auto o = run(script);
    BOOST_TEST(o.exit.exit_status == 0, o.output);
    BOOST_TEST(o.output == output);
  };
  succeeds_with(
      "for f in /etc/planted /dev/planted /planted; do touch $f 2>/dev/null && echo wrote $f; done; "
      "mount -o remount,rw /etc 2>/dev/null && echo remounted; "
      "echo x > /tmp/planted; echo x > /dev/shm/planted; echo x > $HOME/planted; echo done",
      "done\n");
  succeeds_with(
      "for f in /etc/planted /dev/planted /planted /tmp/planted /dev/shm/planted $HOME/planted; do "
      "  [ -e $f ] && { echo found $f; exit 66; }; done; "
      "grep -q '^hearth:x:1000:1000:' /etc/passwd && [ \"$(wc -l < /etc/passwd)\" = 3 ] || exit 66; echo clean",
      "clean\n");
}

BOOST_AUTO_TEST_CASE(host_processes_are_not_visible) {
  std::string host_pid = std::to_string(getpid());
  auto o = run("ls /proc/" + host_pid + " && exit 66; ps -e --no-headers | wc -l");
  refused(o, "No such file or directory");
  // The sandbox's init, bash, ps, wc: nothing of the host.
  BOOST_TEST(o.output.find("\n4\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(host_processes_cannot_be_signalled) {
  pid_t victim = fork();
  if (victim == 0) {
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(1);
  }
  auto o = run("kill -9 " + std::to_string(victim) + " && exit 66");
  refused(o, "No such process");
  BOOST_TEST(::kill(victim, 0) == 0);  // still alive
  ::kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
}

BOOST_AUTO_TEST_CASE(a_tcp_port_on_the_hosts_loopback_is_unreachable) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_REQUIRE(listen(s, 8) == 0);
  socklen_t len = sizeof addr;
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  auto o = run("echo hi > /dev/tcp/127.0.0.1/" + port + " && exit 66");
  refused(o, "Connection refused");
  BOOST_TEST(accept(s, nullptr, nullptr) == -1);  // nothing reached the host
  close(s);
}

BOOST_AUTO_TEST_CASE(only_loopback_exists_without_network) {
  auto o = run("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; [ -e /etc/resolv.conf ] && exit 66; exit 0");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output == "lo\n");
}

BOOST_AUTO_TEST_CASE(mount_is_refused) {
  refused(run("mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && exit 66"), "must be superuser");
  refused(run(syscall_probe(165, "\"none\", \"/tmp\", \"tmpfs\", 0, 0")), "errno=1\n");
}

BOOST_AUTO_TEST_CASE(unshare_of_a_user_namespace_is_refused) {
  refused(run("unshare -U true && exit 66"), "Operation not permitted");
}

BOOST_AUTO_TEST_CASE(unshare_of_mount_and_network_namespaces_is_refused) {
  refused(run("unshare -rmn true && exit 66"), "Operation not permitted");
  refused(run(syscall_probe(272, "0x40000000, 0, 0, 0, 0")), "errno=1\n");  // unshare(CLONE_NEWNET)
}

BOOST_AUTO_TEST_CASE(ptrace_is_refused) {
  refused(run(syscall_probe(101)), "errno=1\n");  // PTRACE_TRACEME
  refused(run("sleep 5 & strace -p $! -e trace=none 2>&1; kill %1; exit 0"), "Operation not permitted");
}

BOOST_AUTO_TEST_CASE(process_vm_readv_is_refused) {
  refused(run(syscall_probe(310, "1, 0, 0, 0, 0, 0")), "errno=1\n");
}

BOOST_AUTO_TEST_CASE(loading_a_kernel_module_is_refused) {
  refused(run(syscall_probe(313, "0, \"\", 0")), "errno=1\n");   // finit_module
  refused(run(syscall_probe(175, "0, 0, \"\"")), "errno=1\n");   // init_module
  refused(run(syscall_probe(176, "\"loop\", 0")), "errno=1\n");  // delete_module
}

BOOST_AUTO_TEST_CASE(kernel_attack_surface_is_refused) {
  for (int nr : {250 /*keyctl*/, 248 /*add_key*/, 321 /*bpf*/, 298 /*perf_event_open*/, 323 /*userfaultfd*/,
                 425 /*io_uring_setup*/, 246 /*kexec_load*/, 169 /*reboot*/, 167 /*swapon*/, 163 /*acct*/,
                 304 /*open_by_handle_at*/, 303 /*name_to_handle_at*/, 155 /*pivot_root*/, 308 /*setns*/})
    refused(run(syscall_probe(nr)), "errno=1\n");
}

BOOST_AUTO_TEST_CASE(disabling_address_randomization_is_refused) {
  refused(run("setarch -R true && exit 66"), "Operation not permitted");
}

BOOST_AUTO_TEST_CASE(typing_into_the_terminal_is_refused) {
  // ioctl(0, TIOCSTI, "x")
  refused(run(syscall_probe(16, "0, 0x5412, \"x\"")), "errno=1\n");
}

BOOST_AUTO_TEST_CASE(a_symlink_cannot_lead_out_of_the_workspace) {
  TempDir outside, ws;
  hearth::testing::write_file(outside.path / "secret", "s3cret");
  std::filesystem::create_directory_symlink(outside.path, ws.path / "link");
  Isolation iso;
  iso.workspace = ws.str();
  auto o = run("cat /workspace/link/secret && exit 66; ln -s " + outside.str() + "/secret mine; cat mine && exit 66; exit 0",
               iso);
  refused(o, "No such file or directory");
  BOOST_TEST(o.output.find("s3cret") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(dot_dot_cannot_lead_out_of_the_workspace) {
  TempDir parent;
  hearth::testing::write_file(parent.path / "secret", "s3cret");
  std::filesystem::create_directory(parent.path / "ws");
  Isolation iso;
  iso.workspace = (parent.path / "ws").string();
  auto o = run("cat /workspace/../secret ../secret ../../" + parent.str() + "/secret && exit 66", iso);
  refused(o, "No such file or directory");
  BOOST_TEST(o.output.find("s3cret") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_workspace_is_writable_and_persists_on_the_host) {
  TempDir ws;
  Isolation iso;
  iso.workspace = ws.str();
  auto o = run("echo built > out.txt", iso);
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(hearth::testing::read_file(ws.path / "out.txt") == "built\n");
}

BOOST_AUTO_TEST_CASE(a_fork_bomb_is_contained_by_the_pids_limit) {
  Isolation iso;
  iso.pids = 32;
  auto t0 = std::chrono::steady_clock::now();
  auto o = run("for i in $(seq 200); do sleep 4241 & done; echo done", iso,
               std::chrono::milliseconds(3000));
  refused(o, "Resource temporarily unavailable");
  // Ended by its timeout at the latest, and nothing of it survives.
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)));
  BOOST_TEST(!host_process_with_cmdline("sleep 4241"));
  // The host still starts processes at once.
  auto after = run("echo fine");
  BOOST_TEST(after.output == "fine\n");
}

BOOST_AUTO_TEST_CASE(filling_memory_is_stopped_by_the_memory_limit) {
  Isolation iso;
  iso.memory_bytes = 64ull << 20;
  auto o = run("perl -e '$x = \"a\" x (400*1024*1024); print length($x), \"\\n\"; exit 66'", iso);
  BOOST_TEST(o.exit.exit_status != kWorked, o.output);
  // OOM-killed in the sandbox's cgroup, or refused the memory (RLIMIT_AS).
  // (The init reports a command the kernel killed as 128 + SIGKILL.)
  BOOST_TEST((o.exit.exit_status == 128 + SIGKILL || o.output.find("Out of memory") != std::string::npos), o.output);
}

BOOST_AUTO_TEST_CASE(filling_a_tmpfs_stops_at_its_size) {
  refused(run("head -c 100M /dev/zero > $HOME/big && exit 66"), "No space left on device");
  refused(run("head -c 100M /dev/zero > /dev/shm/big && exit 66"), "No space left on device");
}

BOOST_AUTO_TEST_CASE(setsid_does_not_outlive_the_timeout) {
  auto o = run("setsid sleep 4242 & sleep 7101", {}, std::chrono::milliseconds(300));
  BOOST_TEST(o.exit.timed_out);
  BOOST_TEST(!host_process_with_cmdline("sleep 4242"));
  BOOST_TEST(!host_process_with_cmdline("sleep 7101"));
}

// The command is not the pid namespace's init (which gets no signal it has
// no handler for): the init passes the timeout's SIGTERM on to the command's
// process group, so the command and its children end or clean up at the
// timeout, not at the grace period's SIGKILL.
BOOST_AUTO_TEST_CASE(a_timeouts_sigterm_reaches_the_command_and_its_children) {
  TempDir ws;
  Isolation iso;
  iso.workspace = ws.str();
  // A child traps TERM and cleans up; its parent waits for it.
  auto o = run("trap wait TERM; bash -c \"trap 'echo cleaned > /workspace/marker; exit 5' TERM; sleep 1000 & wait\"",
               iso, std::chrono::milliseconds(500), std::chrono::seconds(30));
  BOOST_TEST(o.exit.timed_out);
  BOOST_TEST(hearth::testing::read_file(ws.path / "marker") == "cleaned\n");
  BOOST_TEST(o.exit.exit_status == 5);  // the command's own status, through the init
  // A command without a trap dies of the SIGTERM itself.
  auto plain = run("exec sleep 7102", {}, std::chrono::milliseconds(500), std::chrono::seconds(30));
  BOOST_TEST(plain.exit.exit_status == 128 + SIGTERM);
  BOOST_TEST(!host_process_with_cmdline("sleep 7102"));
}

BOOST_AUTO_TEST_CASE(a_command_killed_by_a_signal_reports_128_plus_the_signal) {
  auto o = run("kill -SEGV $$");
  BOOST_TEST(o.exit.exit_status == 128 + SIGSEGV);
}

BOOST_AUTO_TEST_CASE(a_double_fork_does_not_outlive_the_command) {
  auto o = run("(sleep 4243 &) ; echo started");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output == "started\n");
  BOOST_TEST(!host_process_with_cmdline("sleep 4243"));
}

BOOST_AUTO_TEST_CASE(nohup_does_not_outlive_the_command) {
  auto o = run("nohup sleep 4244 >/dev/null 2>&1 & disown; trap '' TERM HUP; echo ok");
  BOOST_TEST(o.output == "ok\n");
  BOOST_TEST(!host_process_with_cmdline("sleep 4244"));
}

BOOST_AUTO_TEST_CASE(mountinfo_shows_no_host_id) {
  // As root, the sandbox's own tmpfs directories are chowned, not mounted
  // with uid=/gid= options that would name the run's host id. (Unprivileged,
  // the kernel names the engine's own uid there: the mounter's.)
  if (::geteuid() != 0) return;
  auto o = run("cat /proc/self/mountinfo; grep -qE '[ ,]uid=' /proc/self/mountinfo && exit 66; "
               "[ -O /home/hearth ] && [ -O /workspace ] && touch /home/hearth/x /workspace/y && exit 3");
  BOOST_TEST(o.exit.exit_status == 3, o.output);
}

BOOST_AUTO_TEST_CASE(the_engines_environment_is_not_readable) {
  setenv("HEARTH_TEST_ENGINE_SECRET", "tok-123", 1);
  auto o = run("env; cat /proc/1/environ | tr '\\0' '\\n'; cat /proc/" + std::to_string(getppid()) +
               "/environ 2>&1; grep -rs tok-123 /proc/*/environ && exit 66; exit 0");
  unsetenv("HEARTH_TEST_ENGINE_SECRET");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.find("tok-123") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(setuid_programs_gain_nothing) {
  // no_new_privs: a setuid binary runs without its owner's rights.
  refused(run("su -c true root 2>&1 && exit 66; exit 1"), "u");
  refused(run("hostname evil && exit 66"), "hostname");
}

BOOST_AUTO_TEST_CASE(output_is_capped_with_a_marker) {
  Isolation iso;
  iso.output_cap_bytes = 1000;
  auto o = run("head -c 100000 /dev/zero | tr '\\0' x; echo; echo done-writing >&2", iso);
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.size() < 1200u);
  BOOST_TEST(o.output.find("[hearth: output truncated after 1000 bytes") != std::string::npos);
}

// A program that cannot be started inside ends with 127 and the reason in
// its output, as in a shell (the engine does not wait for the sandbox's
// init to start it).
BOOST_AUTO_TEST_CASE(a_missing_program_ends_with_127_and_says_why) {
  ExecSpec spec;
  spec.argv = {"no-such-program-xyz"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = kWorkspaceInside;
  auto o = spawn_to_end(box(), spec);
  BOOST_TEST(o.exit.exit_status == 127);
  BOOST_TEST(o.output.find("cannot start 'no-such-program-xyz' in the sandbox") != std::string::npos, o.output);
  BOOST_TEST(o.output.find("not found") != std::string::npos, o.output);
  // A file that is there but not a program: its own reason.
  spec.argv = {"/etc/hostname"};
  auto denied = spawn_to_end(box(), spec);
  BOOST_TEST(denied.exit.exit_status == 127);
  BOOST_TEST(denied.output.find("Permission denied") != std::string::npos, denied.output);
}

// The sandbox is built off the engine's thread, so a root that cannot be
// built is told when the command ends, not by spawn: status 127, the reason
// in ExitInfo::failure, nothing of the command run.
BOOST_AUTO_TEST_CASE(a_sandbox_that_cannot_be_set_up_ends_the_command_and_says_why) {
  TempDir dir;
  auto conf = dir.write("tool.conf", "setting=1\n");
  Isolation iso;
  iso.binds.push_back({conf.string(), "/etc/hostname/tool.conf", false});  // under a file
  auto o = run("echo ran; exit 66", iso);
  BOOST_TEST(o.exit.exit_status == 127);
  BOOST_TEST(o.exit.failure.find("cannot set up the sandbox") != std::string::npos, o.exit.failure);
  BOOST_TEST(o.exit.failure.find("/etc/hostname") != std::string::npos, o.exit.failure);
  BOOST_TEST(o.output.find("ran") == std::string::npos, o.output);
  // The same where the clone is made on the calling thread (hearth sandbox run's).
  auto here = make_namespace_sandbox(/*one_command=*/true);
  BOOST_REQUIRE_MESSAGE(here.ok(), (here.ok() ? "" : here.message()));
  auto h = spawn_to_end(**here, bash_spec("echo ran; exit 66", iso));
  BOOST_TEST(h.exit.exit_status == 127);
  BOOST_TEST(h.exit.failure.find("cannot set up the sandbox") != std::string::npos, h.exit.failure);
  BOOST_TEST(h.output.find("ran") == std::string::npos, h.output);
  auto fine = spawn_to_end(**here, bash_spec("echo ran"));
  BOOST_TEST(fine.exit.exit_status == 0, fine.output);
  BOOST_TEST(fine.output == "ran\n");
}

// A kill that comes while the child is still being cloned (spawn has
// returned, the loop has not run) ends it as soon as it exists, and never
// signals the engine's own process group.
BOOST_AUTO_TEST_CASE(a_command_killed_while_it_starts_ends_killed) {
  Exited o;
  auto began = std::chrono::steady_clock::now();
  {
    LoopFixture f;
    auto p = box().spawn(&f.loop, bash_spec("echo started; sleep 30"), filling(o));
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    BOOST_TEST((*p)->pid() == 0);  // not handed over yet
    (*p)->kill();
  }
  BOOST_TEST(o.exits == 1);
  BOOST_TEST(o.exit.killed);
  BOOST_TEST(o.exit.exit_status == 128 + SIGKILL, o.output);
  BOOST_TEST((std::chrono::steady_clock::now() - began < std::chrono::seconds(10)));
}

// A sandbox destroyed while one of its commands is being started waits for
// that clone, and the command ends with the reason; the loop closes clean.
BOOST_AUTO_TEST_CASE(a_sandbox_destroyed_while_a_command_starts_ends_that_command) {
  Exited o;
  {
    LoopFixture f;
    auto made = make_namespace_sandbox();
    BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.message()));
    auto p = (*made)->spawn(&f.loop, bash_spec("sleep 30"), filling(o));
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    made->reset();
  }
  BOOST_TEST(o.exits == 1);
  BOOST_TEST(o.exit.exit_status == 127);
  BOOST_TEST(o.exit.failure.find("the sandbox was closed") != std::string::npos, o.exit.failure);
}

// A bind into a part of the root every sandbox copies read-only from the
// prepared root (/etc here) is still made, as root and unprivileged.
BOOST_AUTO_TEST_CASE(a_file_bound_into_etc_is_there) {
  TempDir dir;
  auto conf = dir.write("tool.conf", "setting=1\n");
  ::chmod(dir.str().c_str(), 0755);
  ::chmod(conf.c_str(), 0644);
  Isolation iso;
  iso.binds.push_back({conf.string(), "/etc/tool.conf", false});
  auto o = run("cat /etc/tool.conf; cat /etc/hostname", iso);
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output == "setting=1\nhearth\n");
  const passwd* pw = unprivileged_user();
  if (!pw) return;
  const char* bin = std::getenv("HEARTH_BIN");
  BOOST_REQUIRE(bin);
  auto ran = run_shell(as_user(pw) + bin + " sandbox run --ro " + conf.string() + " -- cat " + conf.string() + " 2>&1");
  BOOST_TEST(ran.status == 0, ran.out);
  BOOST_TEST(ran.out == "setting=1\n");
  ran = run_shell(as_user(pw) + bin + " sandbox run --ro /etc/hostname -- cat /etc/hostname 2>&1");
  BOOST_TEST(ran.status == 0, ran.out);
  BOOST_TEST(ran.out == read_file("/etc/hostname"));
}

// The unprivileged case: the real binary run as an ordinary host user.
BOOST_AUTO_TEST_CASE(unprivileged_user_gets_the_same_isolation) {
  const passwd* pw = unprivileged_user();
  if (!pw) return;
  const char* bin = std::getenv("HEARTH_BIN");
  BOOST_REQUIRE(bin);
  TempDir ws;
  BOOST_REQUIRE(chown(ws.str().c_str(), pw->pw_uid, pw->pw_gid) == 0);
  std::string script =
      "id -u; cat /proc/self/uid_map; touch /workspace/made; cat /etc/shadow; touch /usr/x; ls /root; "
      "echo hi > /dev/tcp/127.0.0.1/1 ; unshare -U true; exit 3";
  auto ran = run_shell(as_user(pw) + bin + " sandbox run --workspace " + ws.str() + " -- bash -c \"" + script +
                       "\" 2>&1");
  std::string out = ran.out;
  BOOST_TEST(ran.status == 3, out);
  BOOST_TEST(out.find("1000\n") == 0);
  // uid_map: inside 1000 is the user's own uid outside, and nothing else.
  BOOST_TEST(out.find(" " + std::to_string(pw->pw_uid) + " ") != std::string::npos);
  BOOST_TEST(std::filesystem::exists(ws.path / "made"));
  struct stat st {};
  stat((ws.path / "made").c_str(), &st);
  BOOST_TEST(st.st_uid == pw->pw_uid);  // made as the user, not as root
  BOOST_TEST(out.find("/etc/shadow: No such file or directory") != std::string::npos);
  BOOST_TEST(out.find("Read-only file system") != std::string::npos);
  BOOST_TEST(out.find("/root") != std::string::npos);
  BOOST_TEST(out.find("Connection refused") != std::string::npos);
  BOOST_TEST(out.find("unshare failed: Operation not permitted") != std::string::npos);

  // Limits without a delegated cgroup: the fallback is applied and reported.
  out = run_shell(as_user(pw) + bin +
                  " sandbox run --pids 16 --timeout 3s -- bash -c 'for i in $(seq 40); do sleep 4245 & done' 2>&1")
            .out;
  BOOST_TEST(out.find("warning: pids limit applies per user (RLIMIT_NPROC") != std::string::npos, out);
  BOOST_TEST(out.find("Resource temporarily unavailable") != std::string::npos, out);
  BOOST_TEST(!host_process_with_cmdline("sleep 4245"));
}

namespace {
// This process's sandbox cgroups ("hearth-<pid>-<n>"), in every hierarchy it
// belongs to.
std::vector<std::string> own_sandbox_cgroups() {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/cgroup");
  std::string prefix = "hearth-" + std::to_string(::getpid()) + "-";
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string dir = "/sys/fs/cgroup" + (controllers.empty() ? "" : "/" + controllers) + line.substr(b + 1);
    if (DIR* d = ::opendir(dir.c_str())) {
      while (auto* e = ::readdir(d))
        if (std::string(e->d_name).rfind(prefix, 0) == 0) found.push_back(dir + "/" + e->d_name);
      ::closedir(d);
    }
  }
  return found;
}
}  // namespace

// A sandbox destroyed while its command was being cloned on libuv's pool:
// the command fails to start, its child is gone, and so are its cgroups.
BOOST_AUTO_TEST_CASE(a_sandbox_closed_while_its_command_starts_leaves_no_cgroup_behind) {
  if (without_namespaces()) return;
  Isolation iso;
  iso.memory_bytes = 256ull << 20;
  auto before = own_sandbox_cgroups();
  auto made = make_namespace_sandbox();
  BOOST_REQUIRE(made);
  bool had_cgroup = false;
  Exited o;
  {
    LoopFixture f;
    auto p = (*made)->spawn(&f.loop, bash_spec("sleep 4246", iso), filling(o));
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    had_cgroup = own_sandbox_cgroups().size() > before.size();
    made->reset();  // waits for the clone; its completion finds the sandbox gone
  }
  BOOST_TEST(o.exits == 1);
  BOOST_TEST(o.exit.failure.find("closed while the command was starting") != std::string::npos, o.exit.failure);
  BOOST_TEST(!host_process_with_cmdline("sleep 4246"));
  BOOST_TEST_MESSAGE((had_cgroup ? "the sandbox had a cgroup" : "no cgroup was made for the sandbox here"));
  BOOST_TEST(own_sandbox_cgroups() == before, "a cgroup of the closed sandbox was left behind");
}

BOOST_AUTO_TEST_SUITE_END()

// Steps of a workflow through the real engine.
BOOST_AUTO_TEST_SUITE(namespace_sandbox_steps)

BOOST_AUTO_TEST_CASE(an_empty_workspace_persists_across_steps_and_resume_and_outputs_work) {
  setenv("HEARTH_TEST_ENGINE_SECRET", "tok-456", 1);
  hearth::testing::TempRepo repo(R"WF(
[sandbox]
kind = "namespace"
workspace = "empty"

[env]
GREETING = "hello"

[[steps]]
id = "make"
run = '''
echo "$GREETING" > made.txt
echo "where=$(pwd)" >> "$HEARTH_OUTPUT"
env > env.txt
'''

[[steps]]
id = "use"
needs = ["make"]
run = '''
cat made.txt
[ -e ../state.db ] && exit 66
[ -f done-once ] || { touch done-once; exit 3; }
echo "again=$(cat made.txt)" >> "$HEARTH_OUTPUT"
'''
)WF");
  auto first = repo.run();
  unsetenv("HEARTH_TEST_ENGINE_SECRET");
  BOOST_TEST(first.outcome.status == hearth::RunStatus::failed);
  auto ws = repo.root() / ".hearth" / "workspaces" / first.outcome.run_id;
  BOOST_TEST(hearth::testing::read_file(ws / "made.txt") == "hello\n");
  BOOST_TEST(!repo.exists("made.txt"));  // the repository is untouched
  std::string env = hearth::testing::read_file(ws / "env.txt");
  BOOST_TEST(env.find("tok-456") == std::string::npos, env);
  BOOST_TEST(env.find("GREETING=hello") != std::string::npos, env);
  auto second = repo.resume(first.outcome.run_id);
  BOOST_TEST(second.outcome.status == hearth::RunStatus::succeeded);
  expect_succeeded_with(second, "use", "again", "hello");
}

BOOST_AUTO_TEST_CASE(a_checkout_workspace_is_the_committed_tree_with_git_working_inside) {
  hearth::testing::TempRepo repo(kCheckoutHead + R"WF(
[[steps]]
id = "look"
run = '''
cat committed.txt
[ ! -e scratch.txt ] || { echo "an uncommitted file reached the checkout"; exit 61; }
[ ! -e ../state.db ] || exit 62
git status --porcelain > /tmp/status.txt
cp /tmp/status.txt status.txt
git log --format=%s > log.txt
git config --list --show-origin > config.txt
echo edited >> committed.txt
echo "branch=$(git rev-parse --abbrev-ref HEAD)" >> "$HEARTH_OUTPUT"
'''

[[steps]]
id = "again"
needs = ["look"]
run = '''
[ -f done-once ] || { touch done-once; exit 3; }
echo "diff=$(git diff --name-only)" >> "$HEARTH_OUTPUT"
'''
)WF");
  auto root = repo.root();
  auto sh = [&](const std::string& cmd) {
    std::string full = "cd '" + root.string() + "' && " + cmd + " >/dev/null 2>&1";
    BOOST_REQUIRE_MESSAGE(std::system(full.c_str()) == 0, cmd);
  };
  hearth::testing::write_file(root / "committed.txt", "from git\n");
  sh("git init -q -b main . && git add committed.txt workflow.toml && "
     "git -c user.name=t -c user.email=t@example.com commit -q -m first");
  sh("git config credential.helper 'store --file /root/.never'");
  hearth::testing::write_file(root / "scratch.txt", "not committed\n");
  auto first = repo.run();
  BOOST_TEST(first.outcome.status == hearth::RunStatus::failed);  // "again" fails once
  auto ws = root / ".hearth" / "workspaces" / first.outcome.run_id;
  BOOST_TEST(hearth::testing::read_file(ws / "status.txt") == "");
  BOOST_TEST(hearth::testing::read_file(ws / "log.txt") == "first\n");
  std::string config = hearth::testing::read_file(ws / "config.txt");
  BOOST_TEST(config.find("credential") == std::string::npos, config);
  BOOST_TEST(repo.read("committed.txt") == "from git\n");  // the host's tree is untouched
  bool branch = false;
  for (auto& e : first.events)
    if (e.type == "step.succeeded" && e.step_id == "look") branch = e.data["outputs"]["branch"] == "main";
  BOOST_TEST(branch);
  // The resumed run keeps the same checkout, with the first step's edit.
  auto second = repo.resume(first.outcome.run_id);
  BOOST_TEST(second.outcome.status == hearth::RunStatus::succeeded);
  expect_succeeded_with(second, "again", "diff", "committed.txt");
}

BOOST_AUTO_TEST_CASE(a_checkout_of_a_ref_that_does_not_exist_fails_the_step_naming_it) {
  hearth::testing::TempRepo repo(kCheckoutHead + R"WF(ref = "no-such-branch"

[[steps]]
id = "look"
run = 'true'
)WF");
  std::string init = "cd '" + repo.root().string() + "' && git init -q -b main . && git add workflow.toml && "
                     "git -c user.name=t -c user.email=t@example.com commit -q -m first >/dev/null";
  BOOST_REQUIRE(std::system(init.c_str()) == 0);
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == hearth::RunStatus::failed);
  bool named = false;
  for (auto& e : r.events)
    if (e.type == "step.failed") {
      std::string reason = e.data.value("reason", "");
      named = reason.find("no-such-branch") != std::string::npos && reason.find("workspace") != std::string::npos;
      BOOST_TEST(named, reason);
    }
  BOOST_TEST(named);
}

BOOST_AUTO_TEST_CASE(repo_workspace_is_the_repository_at_workspace) {
  hearth::testing::TempRepo repo(R"WF(
[sandbox]
kind = "namespace"

[[steps]]
id = "write"
run = '''
pwd > where.txt; id -u >> where.txt
[ ! -e .hearth/state.db ] || { echo "the state database is visible"; exit 66; }
ls -A .hearth | wc -l >> where.txt
touch .hearth/x 2>/dev/null && exit 67 || true
'''
)WF");
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == hearth::RunStatus::succeeded);
  // The engine's state directory in the repository is an empty, read-only
  // directory inside: not the database, not other runs' files.
  BOOST_TEST(repo.read("where.txt") == "/workspace\n1000\n0\n");
  BOOST_TEST(repo.exists(".hearth/state.db"));
}

BOOST_AUTO_TEST_SUITE_END()
