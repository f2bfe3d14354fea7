// What a hostile step can reach beyond its files: descriptors the engine's
// own parent left open, and system calls the kernel offers. Each probe runs
// in the real `hearth` binary's sandbox (as root, and as an ordinary user
// where the host has `hearth-test`) and exits 66 when the attack WORKED, so
// a probe that fails to run at all cannot pass.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::testing;

namespace {

const std::string kSecret = "host-secret-7c1f04d9e2";
using Ran = ShellRun;

// The real `hearth` with `args`, started from `dir` by a shell; with
// `open_fds` the shell first opens a secret file on descriptors 7 and 12 and
// a pipe on 9, without close-on-exec, as a careless parent would
// (`exec 7<file; hearth ...`). `as` (if set) is the host user it runs as.
Ran hearth_as(const std::string& args, const std::filesystem::path& dir, const passwd* as, bool open_fds) {
  const char* bin = std::getenv("HEARTH_BIN");
  BOOST_REQUIRE(bin);
  TempDir holder;
  auto secret = holder.path / "secret";
  write_file(secret, kSecret + "\n");
  ::chmod(holder.str().c_str(), 0755);
  ::chmod(secret.c_str(), 0644);
  std::string inner = (open_fds ? "exec 7<" + sh_quoted(secret.string()) + " 12<" + sh_quoted(secret.string()) +
                                       " 9< <(echo " + kSecret + "); "
                                 : std::string()) +
                      "exec " + sh_quoted(bin) + " " + args;
  std::string cmd = "cd " + sh_quoted(dir.string()) + " && ";
  if (as) cmd += as_user(as);
  cmd += "timeout -k 5 120 bash -c " + sh_quoted(inner) + " 2>&1";  // a hang fails, as exit 124
  return run_shell(cmd);
}

Ran hearth_with_open_fds(const std::string& args, const std::filesystem::path& dir, const passwd* as = nullptr) {
  return hearth_as(args, dir, as, true);
}

// Tries every descriptor from 3 to 20, through /dev/fd and /proc/self/fd:
// prints what it could read and exits 66 if that held the secret.
std::string fd_probe() {
  return "for n in $(seq 3 20); do for p in /dev/fd/$n /proc/self/fd/$n; do "
         "if timeout 1 cat $p 2>/dev/null | grep -q " + kSecret + "; then echo \"read the secret via $p\"; exit 66; fi; "
         "done; done; echo 'no inherited descriptor'";
}

void no_secret(const Ran& r) {
  BOOST_TEST(r.status != kWorked, "the attack worked: " << r.out);
  BOOST_TEST(r.out.find("no inherited descriptor") != std::string::npos, "the probe did not finish: " << r.out);
}


// One attack per argument; exits 66 when the call WORKED or reached the
// kernel (an errno other than the filter's ENOSYS or EPERM), 1 otherwise.
const char* kProbeSource = R"PROBE(#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int report(const char* what, long r) {
  if (r >= 0) { printf("%s worked\n", what); return 66; }
  printf("%s errno=%d\n", what, errno);
  return errno == ENOSYS || errno == EPERM ? 1 : 66;
}

int main(int argc, char** argv) {
  const char* c = argc > 1 ? argv[1] : "";
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(c, "fsopen")) return report(c, syscall(430, "tmpfs", 0));
  if (!strcmp(c, "fsmount")) return report(c, syscall(432, -1, 0, 0));
  if (!strcmp(c, "move_mount")) return report(c, syscall(429, -1, "", -1, "/tmp", 0));
  if (!strcmp(c, "open_tree")) return report(c, syscall(428, AT_FDCWD, "/tmp", 1));
  if (!strcmp(c, "mount_setattr")) return report(c, syscall(442, -1, "", 0, NULL, 0));
  if (!strcmp(c, "clone3_ns")) {
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_NEWUSER | CLONE_NEWNS;
    a.exit_signal = SIGCHLD;
    long r = syscall(435, &a, sizeof a);
    if (r == 0) _exit(0);
    return report(c, r);
  }
  if (!strcmp(c, "clone_ns")) {
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    return report(c, r);
  }
  if (!strcmp(c, "pidfd_getfd")) return report(c, syscall(438, (int)syscall(434, getpid(), 0), 0, 0));
  if (!strcmp(c, "process_madvise")) {
    static char page[4096];
    struct iovec v = {page, sizeof page};
    return report(c, syscall(440, (int)syscall(434, getpid(), 0), &v, 1, 20, 0));
  }
  if (!strcmp(c, "int80")) {  /* i386 getpid (20) from this 64-bit process */
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    printf("int80 returned %ld\n", r);
    return r > 0 ? 66 : 1;
  }
  if (!strcmp(c, "x32")) return report(c, syscall(0x40000000L | 39));  /* x32 getpid */
  if (!strcmp(c, "high")) {
    for (int n = 460; n <= 470; ++n) {
      errno = 0;
      long r = syscall(n, 0, 0, 0, 0, 0);
      if (r >= 0 || errno != ENOSYS) { printf("syscall %d: %ld errno=%d\n", n, r, errno); return 66; }
    }
    printf("high errno=38\n");
    return 1;
  }
  printf("unknown probe %s\n", c);
  return 2;
}
)PROBE";

// The probe, compiled on the host into a fresh workspace `ws` (owned by `as`).
void build_probe(const TempDir& ws, const passwd* as) {
  write_file(ws.path / "probe.c", kProbeSource);
  std::string cmd = "cc -O1 -o " + sh_quoted((ws.path / "probe").string()) + " " + sh_quoted((ws.path / "probe.c").string());
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "cannot compile the probe: " + cmd);
  ::chmod(ws.str().c_str(), 0755);
  if (as) ::chown(ws.str().c_str(), as->pw_uid, as->pw_gid);
}

// Runs each probe in the namespace sandbox as root and, where the host has
// hearth-test, as an ordinary user; each must not have worked, and must
// have run (its output names it) unless `killed` says SIGSYS ended it.
void probes_fail(const std::vector<std::string>& probes, const std::string& expected, bool killed = false) {
  std::vector<const passwd*> users{nullptr};
  if (const passwd* pw = unprivileged_user()) users.push_back(pw);
  for (const passwd* as : users) {
    TempDir ws;
    build_probe(ws, as);
    for (auto& probe : probes) {
      Ran r = hearth_as("sandbox run --workspace " + sh_quoted(ws.str()) + " -- ./probe " + probe, ws.path, as, false);
      std::string who = std::string(as ? "as hearth-test: " : "as root: ") + probe + ": ";
      BOOST_TEST(r.status != kWorked, who << "the attack worked: " << r.out);
      if (killed) {
        BOOST_TEST(r.status == 128 + SIGSYS, who << "expected death by SIGSYS, got " << r.status << ": " << r.out);
      } else {
        BOOST_TEST(r.out.find(probe + " " + expected) != std::string::npos, who << "expected '" << expected << "' in: " << r.out);
      }
    }
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(sandbox_surface_security)

BOOST_AUTO_TEST_CASE(a_descriptor_left_open_by_hearths_parent_is_not_readable_in_the_namespace_sandbox) {
  TempDir ws;
  no_secret(hearth_with_open_fds("sandbox run -- bash -c " + sh_quoted(fd_probe()), ws.path));
  if (const passwd* pw = unprivileged_user()) {
    ::chown(ws.str().c_str(), pw->pw_uid, pw->pw_gid);
    no_secret(hearth_with_open_fds("sandbox run -- bash -c " + sh_quoted(fd_probe()), ws.path, pw));
  } else {
    BOOST_TEST_MESSAGE("SKIPPED the unprivileged half: needs root and the user hearth-test");
  }
}

BOOST_AUTO_TEST_CASE(a_descriptor_left_open_by_hearths_parent_is_not_readable_under_the_local_backend) {
  TempDir ws;
  no_secret(hearth_with_open_fds("sandbox run --local -- bash -c " + sh_quoted(fd_probe()), ws.path));
}

BOOST_AUTO_TEST_CASE(a_descriptor_left_open_by_hearths_parent_reaches_neither_a_step_nor_a_granted_program) {
  TempDir repo;
  auto peek = repo.path / "host-bin" / "peek";
  write_file(peek, "#!/bin/bash\n" + fd_probe() + "\n");
  ::chmod(peek.c_str(), 0755);
  write_file(repo.path / ".hearth" / "workflows" / "fds.toml",
             workflow_toml({{.id = "probe", .run = "(" + fd_probe() + ") > step.txt\npeek go > granted.txt\n", .more = R"(commands = ["peek"])"}},
                           sandbox_head("namespace") + command_toml("peek", peek.string(), {"go"})));
  Ran r = hearth_with_open_fds("run fds", repo.path);
  BOOST_TEST(r.status == 0, r.out);
  std::string step = read_file(repo.path / "step.txt"), granted = read_file(repo.path / "granted.txt");
  BOOST_TEST(step.find("no inherited descriptor") != std::string::npos, step);
  BOOST_TEST(granted.find("no inherited descriptor") != std::string::npos, granted);
  BOOST_TEST(step.find("read the secret") == std::string::npos, step);
  BOOST_TEST(granted.find("read the secret") == std::string::npos, granted);
}

BOOST_AUTO_TEST_CASE(the_new_mount_api_is_refused) {
  probes_fail({"fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr"}, "errno=1");
}

BOOST_AUTO_TEST_CASE(clone_into_new_namespaces_is_refused) {
  probes_fail({"clone3_ns"}, "errno=38");  // the C library falls back to clone
  probes_fail({"clone_ns"}, "errno=1");
}

BOOST_AUTO_TEST_CASE(taking_another_processes_descriptors_or_memory_advice_is_refused) {
  probes_fail({"pidfd_getfd"}, "errno=1");
  probes_fail({"process_madvise"}, "errno=38");
}

BOOST_AUTO_TEST_CASE(system_calls_the_filter_does_not_list_answer_enosys) {
  probes_fail({"high"}, "errno=38");
}

BOOST_AUTO_TEST_CASE(system_calls_of_other_abis_kill_the_caller) {
  probes_fail({"int80"}, "", true);
  probes_fail({"x32"}, "", true);
}

BOOST_AUTO_TEST_CASE(real_toolchains_run_under_the_allow_list) {
  TempDir ws;
  std::string script = R"(set -e
cd /workspace
printf 'int main(void){return 0;}\n' > t.c
printf 'all:\n\tcc -o t t.c\n' > Makefile
make -s && ./t
git init -q r && cd r && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && git log --oneline | wc -l && cd ..
python3 -c 'import subprocess, threading, tempfile, os; t = threading.Thread(target=lambda: None); t.start(); t.join(); print(subprocess.run(["true"]).returncode, os.cpu_count() > 0)'
node -e 'require("child_process").execFileSync("true"); new (require("worker_threads").Worker)("0", {eval: true}).on("exit", () => console.log("node ok"))'
npm --version >/dev/null
echo toolchains ok)";
  Ran r = hearth_as("sandbox run --workspace " + sh_quoted(ws.str()) + " -- bash -c " + sh_quoted(script), ws.path, nullptr,
                    false);
  BOOST_TEST(r.status == 0, r.out);
  BOOST_TEST(r.out.find("node ok") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("toolchains ok") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_SUITE_END()
