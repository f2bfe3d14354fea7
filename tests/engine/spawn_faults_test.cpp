// A sandbox whose spawn fails (tests/support/failing_sandbox.h: the real
// local backend, but the n-th spawn refused): the attempt is recorded as a
// spawn error with the backend's reason, the retry policy applies, nothing
// recorded before is lost, and a resumed run completes. Real processes and
// a real SQLite file; time is the manual twin, so backoff passes in a call.
#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/engine/twin_engine.h"
#include "tests/support/failing_sandbox.h"
#include "tests/support/manual_clock.h"

using namespace std::chrono_literals;
using hearth::testing::FailingSandbox;
using hearth::testing::kInjectedSpawnFailure;
using hearth::testing::ManualClock;
using hearth::testing::TempRepo;
using hearth::testing::TwinEngine;

namespace {

// a → b → c, and d after a. With one job at a time the spawns go a, b, ...
// so the second spawn is b's first attempt.
constexpr const char* kWorkflow = R"(
name = "chain"
[[steps]]
id = "a"
run = "echo a >> log; echo built=yes >> $HEARTH_OUTPUT"
[[steps]]
id = "b"
needs = ["a"]
run = "echo b >> log"
RETRY
[[steps]]
id = "c"
needs = ["b"]
run = "echo c >> log"
[[steps]]
id = "d"
needs = ["a"]
run = "echo d >> log"
)";

std::string workflow(const std::string& retry) {
  std::string text = kWorkflow;
  text.replace(text.find("RETRY"), 5, retry);
  return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spawn_faults)

BOOST_AUTO_TEST_CASE(a_failed_spawn_is_a_spawn_error_that_the_retry_policy_covers) {
  TempRepo repo{workflow(R"(retry = { attempts = 2, backoff = "fixed", delay = "1m", jitter = false })")};
  ManualClock clock;
  auto local = hearth::sandbox::make_local_sandbox();
  FailingSandbox box(*local, {2});
  TwinEngine e(repo, &clock, &box);
  e.start("s1");
  e.settle();

  BOOST_TEST(repo.read("log") == "a\nd\n");
  auto b = e.step("s1", "b");
  BOOST_TEST(b.status == hearth::StepStatus::waiting);
  BOOST_REQUIRE(b.attempt_list.size() == 1u);
  BOOST_TEST(b.attempt_list[0].reason == "spawn-error");
  BOOST_TEST(b.reason.find(kInjectedSpawnFailure) != std::string::npos, b.reason);
  auto retrying = e.events("step.retrying", "b");
  BOOST_REQUIRE(retrying.size() == 1u);
  BOOST_TEST(retrying[0].data["reason"] == "spawn-error");
  BOOST_TEST(retrying[0].data["message"].get<std::string>().find(kInjectedSpawnFailure) != std::string::npos);
  // What ran before stays recorded: a's outcome and outputs.
  auto a = e.step("s1", "a");
  BOOST_TEST(a.status == hearth::StepStatus::succeeded);
  BOOST_TEST(a.outputs["built"] == "yes");

  clock.advance(1min);
  e.settle();
  BOOST_REQUIRE(e.outcome());
  BOOST_TEST(e.outcome()->status == hearth::RunStatus::succeeded);
  b = e.step("s1", "b");
  BOOST_REQUIRE(b.attempt_list.size() == 2u);
  BOOST_TEST(b.attempt_list[1].reason == "exited");
  BOOST_TEST(repo.read("log") == "a\nd\nb\nc\n");  // d ran while b waited
  BOOST_TEST(box.calls() == 5);
}

BOOST_AUTO_TEST_CASE(a_failed_spawn_fails_its_step_keeps_the_rest_and_resume_completes_the_run) {
  TempRepo repo{workflow("")};
  ManualClock clock;
  auto local = hearth::sandbox::make_local_sandbox();
  {
    FailingSandbox box(*local, {2});
    TwinEngine e(repo, &clock, &box);
    e.start("s2");
    e.settle();
    BOOST_REQUIRE(e.outcome());
    BOOST_TEST(e.outcome()->status == hearth::RunStatus::failed);
    auto b = e.step("s2", "b");
    BOOST_TEST(b.status == hearth::StepStatus::failed);
    BOOST_REQUIRE(b.attempt_list.size() == 1u);
    BOOST_TEST(b.attempt_list[0].reason == "spawn-error");
    BOOST_TEST(b.reason.find(kInjectedSpawnFailure) != std::string::npos, b.reason);
    auto failed = e.events("step.failed", "b");
    BOOST_REQUIRE(failed.size() == 1u);
    BOOST_TEST(failed[0].data["reason"] == "spawn-error");
    BOOST_TEST(e.step("s2", "a").outputs["built"] == "yes");
    BOOST_TEST(e.step("s2", "c").status == hearth::StepStatus::skipped);
    BOOST_TEST(e.step("s2", "d").status == hearth::StepStatus::succeeded);
    BOOST_TEST(repo.read("log") == "a\nd\n");
  }
  // The same store, a backend that starts everything: b and c run, a and d
  // keep their outcomes and do not run again.
  FailingSandbox box(*local, {});
  TwinEngine e(repo, &clock, &box);
  auto refused = e.resume("s2");
  BOOST_REQUIRE_MESSAGE(!refused, (refused ? *refused : ""));
  e.settle();
  BOOST_REQUIRE(e.outcome());
  BOOST_TEST(e.outcome()->status == hearth::RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nd\nb\nc\n");
  auto b = e.step("s2", "b");
  BOOST_REQUIRE(b.attempt_list.size() == 2u);
  BOOST_TEST(b.attempt_list[0].reason == "spawn-error");
  BOOST_TEST(b.attempt_list[1].reason == "exited");
  BOOST_TEST(e.step("s2", "a").attempt_list.size() == 1u);
  BOOST_TEST(e.step("s2", "a").outputs["built"] == "yes");
  BOOST_TEST(box.calls() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
