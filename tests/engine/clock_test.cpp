// The engine's time through the clock seam (util/clock.h): retry backoff,
// the lease and step timeouts follow the clock given to the engine. Real
// runs, real processes, a real SQLite file; only time is the manual twin
// (tests/support/manual_clock.h), so minutes pass in a call.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/engine/twin_engine.h"
#include "tests/support/manual_clock.h"

using namespace std::chrono_literals;
using hearth::testing::ManualClock;
using hearth::testing::TempRepo;
using hearth::testing::TwinEngine;

namespace {

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_clock)

BOOST_AUTO_TEST_CASE(retry_starts_when_the_clock_passes_its_backoff_and_not_before) {
  TempRepo repo{R"(
name = "flaky"
[[steps]]
id = "fetch"
run = "echo try >> tries; [ -e failed-once ] || { touch failed-once; exit 3; }"
retry = { attempts = 2, backoff = "fixed", delay = "5m", jitter = false }
[[steps]]
id = "after"
needs = ["fetch"]
run = "echo after >> tries"
)"};
  ManualClock clock;
  TwinEngine e(repo, &clock);
  int64_t t0 = clock.now_ms();
  e.start("r1");
  e.settle();

  // The first attempt failed at t0; the step waits, durably, for t0 + 5 min.
  auto fetch = e.step("r1", "fetch");
  BOOST_TEST(fetch.status == hearth::StepStatus::waiting);
  BOOST_TEST(fetch.attempts == 1);
  BOOST_REQUIRE(fetch.retry_at.has_value());
  BOOST_TEST(*fetch.retry_at == t0 + 300000);
  auto retrying = e.events("step.retrying", "fetch");
  BOOST_REQUIRE(retrying.size() == 1u);
  BOOST_TEST(retrying[0].data["retry_in_ms"].get<int64_t>() == 300000);
  BOOST_TEST(!e.outcome());

  // One millisecond short: nothing starts, though the engine heartbeats.
  clock.advance(299999ms);
  e.settle();
  fetch = e.step("r1", "fetch");
  BOOST_TEST(fetch.status == hearth::StepStatus::waiting);
  BOOST_TEST(fetch.attempts == 1);
  BOOST_TEST(e.events("step.started", "fetch").size() == 1u);
  BOOST_TEST(count_lines(repo.read("tries")) == 1);
  BOOST_TEST(!e.outcome());
  // The lease followed the clock: renewed every 5 s, so still alive now.
  auto leased = e.run("r1");
  BOOST_TEST(leased.lease_heartbeat == t0 + 295000);
  BOOST_TEST(hearth::engine::lease_alive(leased, clock.now_ms()));

  // The last millisecond: the second attempt starts at once, at retry_at.
  clock.advance(1ms);
  e.settle();
  BOOST_REQUIRE(e.outcome());
  BOOST_TEST(e.outcome()->status == hearth::RunStatus::succeeded);
  fetch = e.step("r1", "fetch");
  BOOST_TEST(fetch.status == hearth::StepStatus::succeeded);
  BOOST_REQUIRE(fetch.attempt_list.size() == 2u);
  BOOST_TEST(fetch.attempt_list[0].reason == "exited");
  BOOST_TEST(*fetch.attempt_list[0].exit_code == 3);
  BOOST_TEST(fetch.attempt_list[1].started_at == t0 + 300000);
  BOOST_TEST(fetch.attempt_list[1].reason == "exited");
  BOOST_TEST(repo.read("tries") == "try\ntry\nafter\n");
}

// An engine that hangs (stopped, its pid still alive) keeps its lease only
// until the heartbeat it last wrote is kLeaseStaleMs old by the clock of
// the engine that wants the run; then the run is taken over and finishes.
BOOST_AUTO_TEST_CASE(a_stopped_engines_lease_is_alive_until_the_clock_passes_the_stale_limit) {
  TempRepo repo{R"(
name = "hang"
[[steps]]
id = "work"
run = "if [ -e taken-over ]; then echo resumed; else touch taken-over; echo $$ > work.pid; exec sleep 600; fi"
)"};
  // The engine that hangs: a real process running the run, stopped once its
  // step runs.
  auto wf = repo.load();
  pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    auto store = hearth::engine::Store::open(repo.state_path());
    if (!store.ok()) _exit(3);
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto box = hearth::sandbox::make_local_sandbox();
    hearth::engine::Engine engine(&loop, **store, *box);
    hearth::StartOptions opts;
    opts.run_id = "hung";
    opts.repo = repo.root().string();
    if (!engine.start(wf, nlohmann::json::object(), opts, [](const hearth::RunResult&) {}).ok()) _exit(4);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(5);
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!repo.exists("work.pid") && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    BOOST_REQUIRE_MESSAGE(waitpid(child, &status, WNOHANG) != child, "the engine exited, status " << status);
    usleep(5000);
  }
  ::kill(child, SIGSTOP);
  struct Reap {  // the stopped engine and its step go at the end, whatever happens
    pid_t child;
    const TempRepo& repo;
    ~Reap() {
      ::kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      pid_t group = static_cast<pid_t>(std::atoi(repo.read("work.pid").c_str()));
      if (group > 0) ::kill(-group, SIGKILL);
    }
  } reap{child, repo};
  BOOST_REQUIRE_MESSAGE(repo.exists("work.pid"), "the step never started");

  std::string owner;
  int64_t heartbeat = 0;
  {
    auto store = hearth::engine::Store::open(repo.state_path());
    BOOST_REQUIRE(store.ok());
    auto run = (*store)->load_run("hung");
    BOOST_REQUIRE(run.ok());
    owner = run->lease_owner;
    heartbeat = run->lease_heartbeat;
  }
  BOOST_TEST(owner.rfind(std::to_string(child) + "@", 0) == 0u);

  // This engine's clock reads the instant of the last heartbeat.
  ManualClock clock(heartbeat);
  TwinEngine e(repo, &clock);
  auto refused = e.resume("hung");
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->find("is being run by " + owner) != std::string::npos, *refused);

  clock.advance(std::chrono::milliseconds(hearth::engine::kLeaseStaleMs - 1));
  refused = e.resume("hung");
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->find("is being run by " + owner) != std::string::npos, *refused);
  BOOST_TEST(hearth::engine::lease_alive(e.run("hung"), clock.now_ms()));

  clock.advance(1ms);
  BOOST_TEST(!hearth::engine::lease_alive(e.run("hung"), clock.now_ms()));
  auto taken = e.resume("hung");
  BOOST_REQUIRE_MESSAGE(!taken, (taken ? *taken : ""));
  e.settle();
  BOOST_REQUIRE(e.outcome());
  BOOST_TEST(e.outcome()->status == hearth::RunStatus::succeeded);
  auto work = e.step("hung", "work");
  BOOST_REQUIRE(work.attempt_list.size() == 2u);
  BOOST_TEST(work.attempt_list[0].reason == "interrupted");
  BOOST_TEST(work.attempt_list[1].output_tail == "resumed\n");
  BOOST_TEST(e.run("hung").lease_owner.empty());
}

// The step's timeout and the kill grace after it run on the engine's clock:
// SIGTERM when the clock passes the timeout, SIGKILL when it passes the
// grace, to a real process that ignores the first.
BOOST_AUTO_TEST_CASE(a_step_timeout_signals_when_the_clock_passes_it) {
  TempRepo repo{R"(
name = "slow"
[[steps]]
id = "slow"
timeout = "10m2s"
run = "trap 'echo got-term' TERM; echo ready; while :; do sleep 600 & wait $! || :; done"
)"};
  ManualClock clock;
  TwinEngine e(repo, &clock, nullptr, 10min);
  e.start("t1");
  auto printed = [&](const std::string& what) { return e.recorder.output["slow"].find(what) != std::string::npos; };
  e.run_until([&] { return printed("ready"); });

  // One millisecond short: the timeout is still armed, due next (the
  // heartbeat's next is 3 s away), so no signal went.
  clock.advance(602s - 1ms);
  BOOST_REQUIRE(clock.next_due().has_value());
  BOOST_TEST(clock.next_due()->count() == 1);
  BOOST_TEST(!printed("got-term"));
  BOOST_TEST(!e.outcome());

  clock.advance(1ms);  // SIGTERM: the step's trap prints and it carries on
  e.run_until([&] { return printed("got-term"); });
  BOOST_TEST(!e.outcome());

  clock.advance(10min);  // the grace is over: SIGKILL
  e.run_until([&] { return e.outcome().has_value(); });
  BOOST_TEST(e.outcome()->status == hearth::RunStatus::failed);
  auto slow = e.step("t1", "slow");
  BOOST_TEST(slow.status == hearth::StepStatus::failed);
  BOOST_TEST(slow.reason == "timed out after 602000ms");
  BOOST_REQUIRE(slow.attempt_list.size() == 1u);
  BOOST_TEST(slow.attempt_list[0].reason == "timeout");
  BOOST_TEST(slow.attempt_list[0].signal == SIGKILL, "output: " << slow.attempt_list[0].output_tail);
}

BOOST_AUTO_TEST_SUITE_END()
