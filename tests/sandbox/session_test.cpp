// Sandbox sessions (sandbox.h's SandboxSession): one namespace sandbox kept
// open for many commands, as an agent step's bash calls use it. What a user
// notices: the commands share /tmp and $HOME and the session's limits, each
// is still isolated like a spawned command, and timeouts, kill() and close
// end what they should and leave nothing behind.
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;
using namespace hearth::testing;

namespace {

using Outcome = Exited;
Sandbox& box() { return namespace_box(); }
ExecSpec command(const std::string& script, std::optional<std::chrono::milliseconds> timeout = {}) {
  return bash_spec(script, {}, timeout);
}

// The session's helper, a child of this process, or 0.
pid_t helper_pid() { return hearth::testing::child_named("hearth-stepbox"); }

}  // namespace

BOOST_AUTO_TEST_SUITE(sandbox_session)

BOOST_AUTO_TEST_CASE(files_in_tmp_and_home_persist_from_one_command_to_the_next) {
  SessionFixture f;
  auto first = f.run("echo kept > /tmp/note; echo mine > $HOME/rc");
  BOOST_TEST(first.exit.exit_status == 0);
  auto second = f.run("cat /tmp/note $HOME/rc");
  BOOST_TEST(second.exit.exit_status == 0);
  BOOST_TEST(second.output == "kept\nmine\n");
}

BOOST_AUTO_TEST_CASE(commands_start_with_default_signals_whatever_the_engine_ignores) {
  // The engine ignores SIGPIPE (commands/broker.cpp); a pipeline in a
  // command must still end its writer with SIGPIPE, not an error message.
  auto old = ::signal(SIGPIPE, SIG_IGN);
  SessionFixture f;
  ::signal(SIGPIPE, old);
  // (glibc's posix_spawn leaves its two reserved real-time signals, 32 and 33,
  // ignored in every child, on the host too: only signals 1-31 count.)
  auto o = f.run(
      "ign=$(awk '/^SigIgn/{print $2}' /proc/self/status); blk=$(awk '/^SigBlk/{print $2}' /proc/self/status); "
      "echo \"ignored=$(( 16#$ign & 0x7fffffff )) blocked=$(( 16#$blk ))\"; yes | head -n 1; echo \"yes=${PIPESTATUS[0]}\"");
  BOOST_TEST(o.output.find("ignored=0 blocked=0") != std::string::npos, o.output);
  BOOST_TEST(o.output.find("yes=141") != std::string::npos, o.output);  // 128 + SIGPIPE
}

BOOST_AUTO_TEST_CASE(the_hosts_tmp_is_not_visible_to_a_sessions_commands) {
  TempDir host;
  hearth::testing::write_file(host.path / "secret", "host file");
  SessionFixture f;
  auto o = f.run("cat " + (host.path / "secret").string() + " && exit 66");
  BOOST_TEST(o.exit.exit_status != kWorked);
  BOOST_TEST(o.output.find("No such file or directory") != std::string::npos, o.output);
}

BOOST_AUTO_TEST_CASE(each_command_is_isolated_like_a_spawned_one) {
  SessionFixture f;
  auto o = f.run(
      "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; hostname; "
      "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; unshare -U true && exit 66; exit 0");
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output.find("1000\n") == 0, o.output);
  BOOST_TEST(o.output.find("CapEff:\t0000000000000000") != std::string::npos);
  BOOST_TEST(o.output.find("NoNewPrivs:\t1") != std::string::npos);
  BOOST_TEST(o.output.find("Seccomp:\t2") != std::string::npos);
  BOOST_TEST(o.output.find("hearth\nlo\n") != std::string::npos, o.output);  // only loopback: network none
}

BOOST_AUTO_TEST_CASE(each_command_gets_its_own_environment_and_directory) {
  TempDir ws;
  std::filesystem::create_directories(ws.path / "src");
  Isolation iso;
  iso.workspace = ws.str();
  SessionFixture f(box(), iso);
  auto spec = command("pwd; echo \"$GREETING\"");
  spec.env.push_back("GREETING=hello");
  spec.cwd = (ws.path / "src").string();  // a host path under the workspace
  auto o = f.start(spec);
  run_loop_until(&f.loop, [&] { return o->exits > 0; });
  BOOST_TEST(o->output == "/workspace/src\nhello\n");
  auto next = f.run("echo \"[$GREETING]\"; pwd");
  BOOST_TEST(next.output == "[]\n/workspace\n");
}

BOOST_AUTO_TEST_CASE(a_missing_program_ends_with_127_and_says_why) {
  SessionFixture f;
  auto spec = command("");
  spec.argv = {"no-such-program-4260"};
  auto o = f.start(spec);
  run_loop_until(&f.loop, [&] { return o->exits > 0; });
  BOOST_TEST(o->exit.exit_status == 127);
  BOOST_TEST(o->output.find("cannot start 'no-such-program-4260'") != std::string::npos, o->output);
}

// The helper tries the PATH in one child, as execvp does: a directory
// without the program and a file that is not executable are skipped, and
// when nothing runs the error that says most (permission) is reported.
BOOST_AUTO_TEST_CASE(a_program_is_looked_up_on_the_path_like_execvp) {
  TempDir ws;
  std::filesystem::create_directories(ws.path / "a");
  std::filesystem::create_directories(ws.path / "b");
  write_file(ws.path / "a" / "tool", "#!/bin/sh\necho from-a\n");  // not executable
  write_file(ws.path / "b" / "tool", "#!/bin/sh\necho from-b\n");
  std::filesystem::permissions(ws.path / "b" / "tool", std::filesystem::perms::owner_all |
                                                        std::filesystem::perms::group_read |
                                                        std::filesystem::perms::group_exec |
                                                        std::filesystem::perms::others_read |
                                                        std::filesystem::perms::others_exec);
  Isolation iso;
  iso.workspace = ws.str();
  SessionFixture f(box(), iso);
  auto spec = command("");
  spec.argv = {"tool"};
  spec.env = {"PATH=/workspace/a:/workspace/missing:/workspace/b:/usr/bin:/bin"};
  auto found = f.start(spec);
  run_loop_until(&f.loop, [&] { return found->exits > 0; });
  BOOST_TEST(found->exit.exit_status == 0);
  BOOST_TEST(found->output == "from-b\n");
  spec.env = {"PATH=/workspace/missing:/workspace/a"};
  auto refused = f.start(spec);
  run_loop_until(&f.loop, [&] { return refused->exits > 0; });
  BOOST_TEST(refused->exit.exit_status == 127);
  BOOST_TEST(refused->output.find("Permission denied") != std::string::npos, refused->output);
}

BOOST_AUTO_TEST_CASE(the_pids_limit_counts_the_whole_session) {
  Isolation iso;
  iso.pids = 24;
  if (!limit_warnings(iso).empty()) {
    BOOST_TEST_MESSAGE("skipped: no pids cgroup here: " << limit_warnings(iso).front());
    return;
  }
  SessionFixture f(box(), iso);
  // Detached, so they outlive the command that started them (it waits
  // until all have left its process group).
  auto first = f.run(
      "for i in $(seq 16); do setsid sleep 4261 > /dev/null 2>&1 & done; "
      "until [ \"$(pgrep -c -f '^sleep 4261$')\" = 16 ]; do :; done; echo started");
  BOOST_TEST(first.output == "started\n");
  BOOST_TEST(host_process_with_cmdline("sleep 4261"));
  auto second = f.run("for i in $(seq 16); do sleep 4262 & done; wait; exit 66", std::chrono::milliseconds(3000));
  BOOST_TEST(second.exit.exit_status != kWorked);
  BOOST_TEST(second.output.find("Resource temporarily unavailable") != std::string::npos, second.output);
}

BOOST_AUTO_TEST_CASE(a_timeout_kills_the_commands_process_group) {
  SessionFixture f;
  auto o = f.run("sleep 4263 & sleep 7103", std::chrono::milliseconds(300));
  BOOST_TEST(o.exit.timed_out);
  BOOST_TEST(!host_process_with_cmdline("sleep 4263"));
  BOOST_TEST(!host_process_with_cmdline("sleep 7103"));
  // The session goes on.
  BOOST_TEST(f.run("echo still here").output == "still here\n");
}

BOOST_AUTO_TEST_CASE(kill_ends_the_command_and_its_background_children) {
  SessionFixture f;
  Process* p = nullptr;
  auto o = f.start(command("sleep 4264 & echo started; sleep 1001"), &p);
  run_loop_until(&f.loop, [&] { return o->output.find("started") != std::string::npos; });
  p->kill();
  run_loop_until(&f.loop, [&] { return o->exits > 0; });
  BOOST_TEST(o->exit.killed);
  BOOST_TEST(o->exit.term_signal == SIGTERM);
  BOOST_TEST(o->exit.failure.empty());
  BOOST_TEST(!host_process_with_cmdline("sleep 4264"));
}

BOOST_AUTO_TEST_CASE(output_past_the_cap_is_dropped_with_a_marker) {
  Isolation iso;
  iso.output_cap_bytes = 1000;
  SessionFixture f(box(), iso);
  auto o = f.run("head -c 5000 /dev/zero | tr '\\0' a; echo; echo end");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.find("[hearth: output truncated after 1000 bytes") != std::string::npos);
  BOOST_TEST(o.output.find("end") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_detached_process_holding_the_output_does_not_hold_up_the_command) {
  SessionFixture f;
  // Started through a fifo, so it has left the command's process group
  // before the command ends.
  auto o = f.run("mkfifo /tmp/ready; setsid sh -c 'echo > /tmp/ready; exec sleep 4265' & read < /tmp/ready; echo hi");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.find("hi\n") == 0, o.output);
  BOOST_TEST(o.output.find("still holds its output open") != std::string::npos, o.output);
  BOOST_TEST(host_process_with_cmdline("sleep 4265"));  // it lives on in the session
}

BOOST_AUTO_TEST_CASE(a_helper_killed_from_outside_fails_the_command_and_the_next_one_clearly) {
  SessionFixture f;
  auto o = f.start(command("echo started; sleep 4266"));
  run_loop_until(&f.loop, [&] { return o->output.find("started") != std::string::npos; });
  pid_t helper = helper_pid();
  BOOST_REQUIRE(helper > 0);
  ::kill(helper, SIGKILL);
  run_loop_until(&f.loop, [&] { return o->exits > 0; });
  BOOST_TEST(o->exit.term_signal == SIGKILL);
  BOOST_TEST(!o->exit.killed);
  BOOST_TEST(o->exit.failure.find("helper (hearth-stepbox") != std::string::npos, o->exit.failure);
  BOOST_TEST(o->exit.failure.find("killed by signal 9") != std::string::npos, o->exit.failure);
  BOOST_TEST(!host_process_with_cmdline("sleep 4266"));
  auto next = f.session->exec(command("true"), {});
  BOOST_REQUIRE(!next.ok());
  BOOST_TEST(next.message().find("helper (hearth-stepbox") != std::string::npos, next.message());
  BOOST_TEST(f.session->problem() == next.message());
}

BOOST_AUTO_TEST_CASE(closing_the_session_ends_a_running_command_and_leaves_no_process) {
  SessionFixture f;
  auto o = f.start(command(
      "setsid sleep 4267 > /dev/null 2>&1 & until pgrep -f '^sleep 4267$' > /dev/null; do :; done; "
      "echo started; sleep 4268"));
  run_loop_until(&f.loop, [&] { return o->output.find("started") != std::string::npos; });
  BOOST_TEST(helper_pid() > 0);
  f.session->close([&] { f.closed = true; });
  run_loop_until(&f.loop, [&] { return f.closed; });
  BOOST_TEST(o->exits == 1);
  BOOST_TEST(o->exit.killed);
  BOOST_TEST(o->exit.failure.empty());
  BOOST_TEST(!host_process_with_cmdline("sleep 4267"));
  BOOST_TEST(!host_process_with_cmdline("sleep 4268"));
  BOOST_TEST(helper_pid() == 0);
  auto after = f.session->exec(command("true"), {});
  BOOST_TEST(!after.ok());
  BOOST_TEST(after.message() == "the sandbox session is closed");
}

BOOST_AUTO_TEST_CASE(destroying_a_session_from_a_commands_exit_callback_is_safe) {
  SessionFixture f;
  auto o = std::make_shared<Outcome>();
  auto p = f.session->exec(command("echo bye"), {[o](std::string_view c) { o->output.append(c); },
                                                                 [o, &f](const ExitInfo& e) {
                                                                   o->exit = e;
                                                                   ++o->exits;
                                                                   f.session->close([&f] { f.closed = true; });
                                                                   f.session.reset();
                                                                 }});
  BOOST_REQUIRE(p.ok());
  run_loop_until(&f.loop, [&] { return f.closed; });
  BOOST_TEST(o->output == "bye\n");
  BOOST_TEST(o->exit.exit_status == 0);
}

BOOST_AUTO_TEST_CASE(a_local_session_runs_each_command_on_the_host) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto local = make_local_sandbox();
  auto s = local->open_session(&loop, {});
  BOOST_REQUIRE(s.ok());
  auto session = std::move(*s);
  TempDir dir;
  auto spec = command("echo $$ > pid; sleep 1002");
  spec.cwd = dir.str();
  ExitInfo exit;
  int exits = 0;
  auto p = session->exec(spec, {nullptr, [&](const ExitInfo& e) {
                                  exit = e;
                                  ++exits;
                                }});
  BOOST_REQUIRE(p.ok());
  run_loop_until(&loop, [&] { return !hearth::testing::read_file(dir.path / "pid").empty(); });
  bool closed = false;
  session->close([&] { closed = true; });
  run_loop_until(&loop, [&] { return closed; });
  BOOST_TEST(exits == 1);
  BOOST_TEST(exit.killed);
  session.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
