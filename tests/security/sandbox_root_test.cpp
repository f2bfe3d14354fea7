// The namespace sandbox when the engine runs as root, from the attacker's
// side: a step must not be host root (no host kernel settings, no host-root
// files), yet the workspace, git and granted commands keep working. Each
// probe exits 66 when the attack WORKED. Cases that need root say so and
// pass trivially otherwise (the suite runs as root in CI).
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "sandbox/idmap.h"
#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

using Outcome = Exited;
// An owner for workspaces that is neither root nor the sandbox's id.
constexpr uid_t kOwner = 4321;

bool as_root() {
  if (::geteuid() == 0) return true;
  BOOST_TEST_MESSAGE("SKIPPED: this case is about an engine running as root");
  return false;
}

Sandbox& box() { return namespace_box(); }

ExecSpec bash(const std::string& script, Isolation iso = {}) { return bash_spec(script, std::move(iso)); }

Outcome run(const ExecSpec& spec) { return spawn_to_end(box(), spec); }

void refused(const Outcome& o) {
  BOOST_TEST(o.exit.exit_status != kWorked, "the attack worked: " << o.output);
  BOOST_TEST(o.exit.exit_status != 127, "the probe did not run: " << o.output);
}

// Host kernel settings a probe tries to change; restored if it did.
struct KernelSetting {
  std::string path, value;
  explicit KernelSetting(std::string p) : path(std::move(p)), value(read_file(path)) {}
  ~KernelSetting() {
    if (read_file(path) == value) return;
    int fd = ::open(path.c_str(), O_WRONLY);
    if (fd >= 0) {
      (void)!::write(fd, value.data(), value.size());
      ::close(fd);
    }
  }
};

// A workspace directory owned by kOwner, holding a git repository.
struct OwnedRepo {
  TempDir dir;
  OwnedRepo() {
    std::string cmd = "git -C " + dir.str() + " init -q && git -C " + dir.str() +
                      " -c user.name=t -c user.email=t@t commit -q --allow-empty -m init && chown -R " +
                      std::to_string(kOwner) + ":" + std::to_string(kOwner) + " " + dir.str();
    BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
    ::chmod(dir.str().c_str(), 0755);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(sandbox_root_security)

BOOST_AUTO_TEST_CASE(a_step_cannot_write_host_kernel_settings) {
  if (!as_root()) return;
  KernelSetting core("/proc/sys/kernel/core_pattern");
  KernelSetting panic("/proc/sys/kernel/panic");
  // A piped core_pattern would run a program as host root at the next crash;
  // this one is harmless, and restored if the write went through.
  auto o = run(bash(
      "echo hearth-probe-core > /proc/sys/kernel/core_pattern && { echo wrote core_pattern; exit 66; }; "
      "echo " + panic.value.substr(0, panic.value.find('\n')) +
      " > /proc/sys/kernel/panic && { echo wrote panic; exit 66; }; "
      "awk '$5 == \"/proc/sys\" || $5 == \"/proc/sysrq-trigger\" {print $5, $6}' /proc/self/mountinfo; exit 3"));
  refused(o);
  BOOST_TEST(o.exit.exit_status == 3, o.output);
  BOOST_TEST(read_file(core.path) == core.value);
  BOOST_TEST(read_file(panic.path) == panic.value);
  // Defence in depth: read-only even for a process that could write them.
  BOOST_TEST(o.output.find("/proc/sys ro,") != std::string::npos, o.output);
  if (std::filesystem::exists("/proc/sysrq-trigger"))  // kernels without magic SysRq have none
    BOOST_TEST(o.output.find("/proc/sysrq-trigger ro,") != std::string::npos, o.output);
}

BOOST_AUTO_TEST_CASE(a_sandboxed_process_is_not_host_root) {
  if (!as_root()) return;
  uv_loop_t loop;
  uv_loop_init(&loop);
  ExecSpec spec;
  spec.argv = {"sleep", "4251"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = kWorkspaceInside;
  spec.kill_grace = std::chrono::milliseconds(200);
  int exits = 0;
  auto p = box().spawn(&loop, spec, {nullptr, [&](const ExitInfo&) { ++exits; }});
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  // The child is cloned off the loop thread: its pid is known once the
  // loop has handed it over (the init has exec'd by then).
  while ((*p)->pid() == 0 && exits == 0) uv_run(&loop, UV_RUN_ONCE);
  std::string line = host_uid_line((*p)->pid());
  (*p)->kill();
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(exits == 1);
  BOOST_TEST(uv_loop_close(&loop) == 0);
  BOOST_TEST_MESSAGE(line);
  BOOST_REQUIRE(line.rfind("Uid:\t", 0) == 0);
  std::istringstream ids(line.substr(5));
  int n = 0;
  for (uid_t id; ids >> id; ++n) BOOST_TEST(id != 0u, line);  // real, effective, saved, filesystem
  BOOST_TEST(n == 4);
}

BOOST_AUTO_TEST_CASE(the_step_is_user_1000_mapped_to_an_unprivileged_host_id) {
  if (!as_root()) return;
  auto o = run(bash("id -u; read inside outside count < /proc/self/uid_map; echo \"$inside $outside $count\"; "
                    "[ \"$outside\" = 0 ] && exit 66; exit 3"));
  refused(o);
  BOOST_TEST(o.exit.exit_status == 3, o.output);
  BOOST_TEST(o.output.find("1000\n1000 ") == 0, o.output);  // inside: the ordinary user 1000
  BOOST_TEST(o.output.find(" 1\n") != std::string::npos, o.output);  // and nothing else is mapped
}

BOOST_AUTO_TEST_CASE(masked_proc_files_read_empty) {
  auto o = run(bash(
      "for f in /proc/timer_list /proc/keys /proc/kcore /proc/sched_debug; do "
      "  [ -e $f ] || continue; n=$(cat $f 2>/dev/null | head -c 64 | wc -c); echo \"$f $n\"; "
      "  [ \"$n\" -gt 0 ] && exit 66; done; exit 3"));
  refused(o);
  BOOST_TEST(o.exit.exit_status == 3, o.output);
  BOOST_TEST(o.output.find("/proc/timer_list 0") != std::string::npos, o.output);
}

BOOST_AUTO_TEST_CASE(files_a_step_creates_belong_to_the_workspace_owner) {
  if (!as_root()) return;
  OwnedRepo ws;
  Isolation iso;
  iso.workspace = ws.dir.str();
  auto o = run(bash("touch made && mkdir dir && echo x > dir/file && stat -c '%u %U' . made; exit 3", iso));
  BOOST_TEST(o.exit.exit_status == 3, o.output);
  for (const char* rel : {"made", "dir", "dir/file"}) {
    struct stat st {};
    BOOST_REQUIRE(::stat((ws.dir.path / rel).c_str(), &st) == 0);
    BOOST_TEST(st.st_uid == kOwner, rel);
    BOOST_TEST(st.st_gid == kOwner, rel);
  }
  // Inside, the workspace and what the step made are its own (user 1000).
  BOOST_TEST(o.output == "1000 hearth\n1000 hearth\n", o.output);
}

BOOST_AUTO_TEST_CASE(git_works_in_a_workspace_of_another_owner) {
  if (!as_root()) return;
  OwnedRepo ws;
  Isolation iso;
  iso.workspace = ws.dir.str();
  auto o = run(bash("git status --short && echo status-ok; git log --format=%s", iso));
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output.find("dubious ownership") == std::string::npos, o.output);
  BOOST_TEST(o.output.find("status-ok\ninit\n") != std::string::npos, o.output);
}

BOOST_AUTO_TEST_CASE(a_granted_command_works_and_the_grants_stay_closed_to_others) {
  if (!as_root()) return;
  TempDir host;
  auto tool = host.path / "tool";
  write_file(tool, "#!/bin/sh\necho \"tool ran as $(id -u) with $*\"\n");
  ::chmod(tool.c_str(), 0755);
  TempRepo repo(workflow_toml({{.id = "use",
                                .run = "tool hello > out.txt\n"
                                       "ls -ld /run/hearth-grants | cut -d' ' -f1,3 >> out.txt\n"
                                       "git status --short >/dev/null && echo git-ok >> out.txt\n",
                                .more = R"(commands = ["tool"])"}},
                              sandbox_head("namespace") + command_toml("tool", tool.string(), {"hello"})));
  std::system(("git -C " + repo.root().string() + " init -q").c_str());
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == hearth::RunStatus::succeeded, r.output("use"));
  std::string out = repo.read("out.txt");
  // On the host's side, in the jail of granted programs: as the run's unprivileged id, not root.
  BOOST_TEST(out.find("tool ran as ") != std::string::npos, out);
  BOOST_TEST(out.find("tool ran as 0 ") == std::string::npos, out);
  BOOST_TEST(out.find("drwx------ hearth") != std::string::npos, out);         // the step's own, inside
  BOOST_TEST(out.find("git-ok") != std::string::npos, out);
  // On the host the grants stay the engine's alone.
  for (auto& e : std::filesystem::recursive_directory_iterator(repo.root() / ".hearth" / "grants")) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    if (S_ISDIR(st.st_mode)) BOOST_TEST((st.st_mode & 077) == 0u, e.path());
    BOOST_TEST(st.st_uid == 0u, e.path());
  }
}

BOOST_AUTO_TEST_CASE(the_id_range_is_the_first_valid_subuid_entry_of_hearth) {
  std::string text = "alice:100000:65536\nhearth:x:5\nhearth:0:10\nhearthx:1:1\nhearth:300000:4096\nhearth:9:9\n";
  auto r = find_subordinate_ids(text, "hearth");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->first == 300000u);  // "x", a range at 0 and other users are skipped
  BOOST_TEST(r->second == 4096u);
  BOOST_TEST(!find_subordinate_ids("alice:100000:65536\n", "hearth").has_value());
  BOOST_TEST(!find_subordinate_ids("hearth:4294967295:2\n", "hearth").has_value());  // past the last id
}

// Host root without CAP_SYS_ADMIN (a container's default set) cannot build
// the sandbox without a user namespace of the command's own, whose user would
// be host root: it refuses, and says why.
BOOST_AUTO_TEST_CASE(root_without_cap_sys_admin_refuses_rather_than_run_steps_as_host_root) {
  if (!as_root()) return;
  const char* bin = std::getenv("HEARTH_BIN");
  BOOST_REQUIRE(bin);
  KernelSetting core("/proc/sys/kernel/core_pattern");
  std::string cmd = std::string("setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin ") + bin +
                    " sandbox run -- bash -c 'echo hearth-probe-core > /proc/sys/kernel/core_pattern && exit 66; "
                    "exit 3' 2>&1";
  auto [status, out] = run_shell(cmd);
  BOOST_TEST(status != kWorked, out);
  BOOST_TEST(out.find("runs as root without CAP_SYS_ADMIN") != std::string::npos, out);
  BOOST_TEST(read_file(core.path) == core.value);
}

// The unprivileged case: the real binary as an ordinary host user.
BOOST_AUTO_TEST_CASE(an_unprivileged_engine_cannot_write_host_kernel_settings_either) {
  const passwd* pw = unprivileged_user();
  if (!pw) return;
  const char* bin = std::getenv("HEARTH_BIN");
  BOOST_REQUIRE(bin);
  KernelSetting core("/proc/sys/kernel/core_pattern");
  std::string cmd = as_user(pw) + bin +
                    " sandbox run -- bash -c 'echo hearth-probe-core > /proc/sys/kernel/core_pattern && exit 66; "
                    "echo timer_list=$(wc -c < /proc/timer_list); exit 3' 2>&1";
  auto [status, out] = run_shell(cmd);
  BOOST_TEST(status == 3, out);
  BOOST_TEST(out.find("timer_list=0\n") != std::string::npos, out);
  BOOST_TEST(read_file(core.path) == core.value);
}

BOOST_AUTO_TEST_SUITE_END()
