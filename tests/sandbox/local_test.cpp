// The local backend: real processes on a real loop.
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "sandbox/sandbox.h"
#include "tests/engine/fixture.h"

using namespace hearth::sandbox;

namespace {

using Outcome = hearth::testing::Exited;

// Runs `script` with bash on a fresh loop until it exits; the loop must close.
// `bash -c script` for the host: the host's PATH only, in `cwd`.
ExecSpec host_spec(const std::string& script, std::optional<std::chrono::milliseconds> timeout = {},
                   const std::string& cwd = "/tmp") {
  ExecSpec spec = hearth::testing::bash_spec(script, {}, timeout, std::chrono::milliseconds(300));
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = cwd;
  return spec;
}

Outcome run_script(const std::string& script, std::optional<std::chrono::milliseconds> timeout = {},
                   const std::string& cwd = "/tmp") {
  auto sandbox = make_local_sandbox();
  return hearth::testing::spawn_to_end(*sandbox, host_spec(script, timeout, cwd));
}

struct Killed {
  ExitInfo exit;
  int exits = 0;
  double seconds = 0;  // from the kill to the loop's end
};

// Runs `bash -c script` and kills it once it prints, or with `at_once`
// as soon as spawn() returns; the loop must close.
Killed run_and_kill(const std::string& script, bool at_once) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto sandbox = make_local_sandbox();
  Killed k;
  Process* proc = nullptr;
  auto begin = std::chrono::steady_clock::now();
  auto p = sandbox->spawn(&loop, host_spec(script),
                          {[&](std::string_view) {
                             begin = std::chrono::steady_clock::now();
                             proc->kill();
                           },
                           [&](const ExitInfo& e) {
                             k.exit = e;
                             ++k.exits;
                           }});
  BOOST_REQUIRE(p.ok());
  proc = *p;
  if (at_once) proc->kill();
  uv_run(&loop, UV_RUN_DEFAULT);
  k.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  BOOST_TEST(uv_loop_close(&loop) == 0);
  return k;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(local_sandbox)

BOOST_AUTO_TEST_CASE(stdout_and_stderr_arrive_in_order_with_the_exit_code) {
  auto o = run_script("echo one; echo two >&2; echo three; exit 4");
  BOOST_TEST(o.exits == 1);
  BOOST_TEST(o.output == "one\ntwo\nthree\n");
  BOOST_TEST(o.exit.exit_status == 4);
  BOOST_TEST(o.exit.term_signal == 0);
  BOOST_TEST(!o.exit.timed_out);
}

BOOST_AUTO_TEST_CASE(death_by_signal_is_reported) {
  auto o = run_script("kill -SEGV $$");
  BOOST_TEST(o.exit.term_signal == SIGSEGV);
  BOOST_TEST(o.exit.exit_status == 128 + SIGSEGV);
}

BOOST_AUTO_TEST_CASE(stdin_is_empty) {
  auto o = run_script("cat; echo done");
  BOOST_TEST(o.output == "done\n");
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_process_group) {
  hearth::testing::TempDir dir;
  auto o = run_script("sleep 30 & echo $! > child; sleep 30", std::chrono::milliseconds(200), dir.str());
  BOOST_TEST(o.exit.timed_out);
  BOOST_TEST(o.exit.term_signal == SIGTERM);
  pid_t child = std::stoi(hearth::testing::read_file(dir.path / "child"));
  BOOST_TEST(hearth::testing::process_gone(child));
}

BOOST_AUTO_TEST_CASE(a_command_that_ignores_sigterm_is_killed_after_the_grace_period) {
  auto o = run_script("trap '' TERM; sleep 30 & wait; sleep 30", std::chrono::milliseconds(100));
  BOOST_TEST(o.exit.timed_out);
  BOOST_TEST(o.exit.term_signal == SIGKILL);
}

BOOST_AUTO_TEST_CASE(background_children_do_not_hold_the_step_open) {
  auto started = std::chrono::steady_clock::now();
  auto o = run_script("sleep 30 & echo parent done");
  BOOST_TEST(o.output == "parent done\n");
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST((std::chrono::steady_clock::now() - started < std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_CASE(a_spawn_failure_is_an_error_and_fires_no_callback) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto sandbox = make_local_sandbox();
  ExecSpec spec;
  spec.argv = {"true"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = "/nonexistent/dir";
  int calls = 0;
  auto p = sandbox->spawn(&loop, spec, {[&](std::string_view) { ++calls; }, [&](const ExitInfo&) { ++calls; }});
  BOOST_REQUIRE(!p.ok());
  BOOST_TEST(p.message().find("/nonexistent/dir") != std::string::npos, p.message());
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(calls == 0);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(the_program_is_looked_up_on_the_commands_own_path) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto sandbox = make_local_sandbox();
  hearth::testing::TempDir dir;
  hearth::testing::write_file(dir.path / "bin" / "greet", "#!/bin/sh\necho hello from greet\n");
  std::filesystem::permissions(dir.path / "bin" / "greet", std::filesystem::perms::owner_all);
  ExecSpec spec;
  spec.argv = {"greet"};
  spec.env = {"PATH=" + (dir.path / "bin").string()};
  spec.cwd = "/tmp";
  std::string out;
  auto p = sandbox->spawn(&loop, spec, {[&](std::string_view c) { out.append(c); }, [](const ExitInfo&) {}});
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(out == "hello from greet\n");
  spec.argv = {"no-such-program-here"};
  auto missing = sandbox->spawn(&loop, spec, {});
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.message().find("'no-such-program-here': not found") != std::string::npos, missing.message());
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(kill_ends_a_running_command) {
  Killed k = run_and_kill("echo ready; sleep 30", /*at_once=*/false);
  BOOST_TEST(k.exit.killed);
  BOOST_TEST(k.exit.term_signal == SIGTERM);
}

// A run cancelled as its step starts: the kill reaches the command, which
// ends without running its course.
BOOST_AUTO_TEST_CASE(a_command_killed_while_it_starts_ends_at_once) {
  Killed k = run_and_kill("sleep 30", /*at_once=*/true);
  BOOST_TEST(k.exits == 1);
  BOOST_TEST(k.exit.killed);
  BOOST_TEST(k.exit.term_signal != 0);
  BOOST_TEST(k.exit.failure.empty(), k.exit.failure);
  BOOST_TEST(k.seconds < 10.0, "the kill did not reach the command: it ran " << k.seconds << " s");
}

BOOST_AUTO_TEST_SUITE_END()
