// The host bash session (agent/local_bash.h) against real bash: the
// persistent cwd, the output cap, exit codes, timeouts, cancellation, a
// vanished cwd, and the loop closing cleanly after each.
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "agent/bash_support.h"
#include "agent/local_bash.h"
#include "tests/engine/fixture.h"

using namespace hearth;
using namespace hearth::testing;
using agent::ToolResult;
using nlohmann::json;

namespace {

constexpr auto npos = std::string::npos;

struct BashFixture : LoopFixture {
  TempDir dir;
  std::unique_ptr<agent::LocalBashSession> bash = std::make_unique<agent::LocalBashSession>(&loop, dir.str());

  ~BashFixture() { bash.reset(); }

  /// Runs one call to its end (or fails after 20 s).
  ToolResult run(const json& args, const std::function<void()>& while_running = nullptr) {
    std::optional<ToolResult> out;
    bash->run(args, [&](ToolResult r) { out = std::move(r); });
    if (while_running) while_running();
    run_loop_until(&loop, [&] { return out.has_value(); });
    return *out;
  }
  ToolResult sh(const std::string& command) { return run(json{{"command", command}}); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(local_bash)

BOOST_AUTO_TEST_CASE(the_cwd_persists_between_calls_as_the_agent_sees_it) {
  BashFixture f;
  BOOST_TEST(f.bash->cwd() == "/workspace");
  auto r = f.sh("mkdir -p a/b && cd a/b && echo moved");
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text == "moved\n[exit code 0]");
  BOOST_TEST(f.bash->cwd() == "/workspace/a/b");
  r = f.sh("pwd");
  BOOST_TEST(r.text == fs::canonical(f.dir.path).string() + "/a/b\n[exit code 0]");
  // Environment variables do not persist; the cwd does, also after `exit`.
  f.sh("export X=1; cd ..; exit 4");
  BOOST_TEST(f.bash->cwd() == "/workspace/a");
  BOOST_TEST(f.sh("echo \"[$X]\"").text == "[]\n[exit code 0]");
}

BOOST_AUTO_TEST_CASE(a_vanished_cwd_falls_back_to_the_workspace_and_says_so) {
  BashFixture f;
  f.sh("mkdir gone && cd gone");
  fs::remove(f.dir.path / "gone");
  auto r = f.sh("pwd");
  BOOST_TEST(r.text.find("[the working directory /workspace/gone no longer exists; ran in /workspace]") == 0u, r.text);
  BOOST_TEST(r.text.find(fs::canonical(f.dir.path).string() + "\n") != npos, r.text);
  BOOST_TEST(f.bash->cwd() == "/workspace");
}

BOOST_AUTO_TEST_CASE(restore_cwd_starts_a_new_session_where_the_old_one_was) {
  BashFixture f;
  fs::create_directories(f.dir.path / "src");
  f.bash->restore_cwd("/workspace/src");
  BOOST_TEST(f.sh("pwd").text == fs::canonical(f.dir.path).string() + "/src\n[exit code 0]");
}

BOOST_AUTO_TEST_CASE(exit_codes_and_signals_are_reported_not_errors) {
  BashFixture f;
  auto r = f.sh("echo out; echo err >&2; exit 3");
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text == "out\nerr\n[exit code 3]");
  r = f.sh("kill -TERM $$");
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text == "(no output)\n[killed by signal 15 (SIGTERM)]");
}

BOOST_AUTO_TEST_CASE(long_output_keeps_its_head_and_tail) {
  BashFixture f;
  auto r = f.sh("echo START; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END");
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text.find("START\n") == 0u);
  BOOST_TEST(r.text.find("END\n[exit code 0]") != npos);
  // 100011 bytes of output: 30000 kept, the rest counted.
  BOOST_TEST(r.text.find("\n[... 70011 bytes omitted ...]\n") != npos);
  BOOST_TEST(r.text.size() < agent::kBashMaxOutputBytes + 100);
}

BOOST_AUTO_TEST_CASE(a_character_cut_at_a_seam_is_dropped_whole) {
  agent::BashOutput out(10);  // a 5-byte head and a 5-byte tail
  // The head ends inside 'é'; the tail's last 5 bytes start inside the first '€'.
  out.append("abcd\xC3\xA9xyz\xE2\x82\xAC\xE2\x82\xAC");
  BOOST_TEST(out.text() == "abcd\n[... 8 bytes omitted ...]\n\xE2\x82\xAC");
}

BOOST_AUTO_TEST_CASE(timeouts_kill_the_process_group) {
  BashFixture f;
  auto started = std::chrono::steady_clock::now();
  auto r = f.run(json{{"command", "sleep 30 & echo $! > bg.pid; sleep 30"}, {"timeout_ms", 300}});
  BOOST_TEST(r.is_error);
  BOOST_TEST(r.text.find("[timed out after 300 ms: the command's process group was killed]") != npos, r.text);
  BOOST_TEST((std::chrono::steady_clock::now() - started < std::chrono::seconds(10)));
  BOOST_TEST(process_gone(std::stoi(read_file(f.dir.path / "bg.pid"))));
}

BOOST_AUTO_TEST_CASE(a_background_process_left_behind_is_killed_at_exit) {
  BashFixture f;
  auto r = f.sh("sleep 30 & echo $! > bg.pid; echo back");
  BOOST_TEST(r.text == "back\n[exit code 0]");
  BOOST_TEST(process_gone(std::stoi(read_file(f.dir.path / "bg.pid"))));
}

BOOST_AUTO_TEST_CASE(cancel_and_destroy_end_a_running_call) {
  BashFixture f;
  auto r = f.run(json{{"command", "sleep 30"}}, [&] { f.bash->cancel(); });
  BOOST_TEST(r.is_error);
  BOOST_TEST(r.text.find("[cancelled: the command's process group was killed]") != npos, r.text);

  std::optional<ToolResult> late;
  f.bash->run(json{{"command", "sleep 30"}}, [&](ToolResult x) { late = std::move(x); });
  f.bash.reset();  // done is called before the destructor returns
  BOOST_REQUIRE(late.has_value());
  BOOST_TEST(late->is_error);
  BOOST_TEST(late->text.find("cancelled") != npos);
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_errors_naming_the_field) {
  BashFixture f;
  auto r = f.run(json{{"command", 5}});
  BOOST_TEST(r.is_error);
  BOOST_TEST(r.text == "bash: field 'command' must be a string, not number");
  r = f.run(json{{"command", "ls"}, {"timeout_ms", 0}});
  BOOST_TEST(r.text.find("bash: field 'timeout_ms' must be between 1 and 600000") == 0u, r.text);
  r = f.run(json{{"command", "ls"}, {"cwd", "/"}});
  BOOST_TEST(r.text == "bash: unknown field 'cwd'");
}

BOOST_AUTO_TEST_SUITE_END()
