// Durable runs: resume after a real crash (the engine process SIGKILLed),
// retries with backoff, the durable backoff wait, --from, --use-current,
// the lease.
#include <signal.h>
#include <sqlite3.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"

using hearth::engine::ResumeOptions;
using hearth::engine::RunStatus;
using hearth::testing::RunResult;
using hearth::testing::TempRepo;

namespace {

std::vector<nlohmann::json> events_of(const RunResult& r, const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : r.events)
    if (e.type == type) out.push_back(e.data);
  return out;
}

hearth::workflows::Workflow load_text(const std::string& text, const std::string& path) {
  auto r = hearth::workflows::load_workflow_text(text, path);
  BOOST_REQUIRE(r.ok());
  return *r.workflow;
}

// A step that hangs on its first attempt (after recording its pid and a
// marker) and succeeds on the next.
const char* kHangOnce = R"(
[[steps]]
id = "a"
run = "echo a >> journal"
[[steps]]
id = "b"
needs = ["a"]
run = "if [ -f b.marker ]; then echo b >> journal; exit 0; fi; echo $$ > b.pid; touch b.marker; sleep 30"
[[steps]]
id = "c"
needs = ["b"]
run = "echo c >> journal"
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(resume)

BOOST_AUTO_TEST_CASE(a_crash_mid_step_resumes_without_rerunning_completed_steps) {
  TempRepo repo(kHangOnce);
  repo.crash_when("crash1", [&] { return repo.exists("b.marker"); });
  auto stored = repo.stored_step("crash1", "b");
  BOOST_REQUIRE(stored);
  BOOST_TEST(stored->status == "running");  // what a crash leaves behind
  RunResult r = repo.resume("crash1");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("journal") == "a\nb\nc\n");  // a ran once
  BOOST_TEST(r.step("a").attempts == 1);
  BOOST_TEST(r.step("b").attempts == 2);
  BOOST_TEST(r.step("b").attempt_list.at(0).reason == "interrupted");
  BOOST_TEST(r.step("b").attempt_list.at(0).finished_at.has_value());
  BOOST_TEST(events_of(r, "step.interrupted").size() == 1u);
  BOOST_TEST(r.events.front().type == "run.resumed");
  BOOST_TEST(r.events.front().seq > 1);  // numbering continues after the crash
}

BOOST_AUTO_TEST_CASE(an_interrupted_step_that_excludes_interruption_fails) {
  std::string wf = kHangOnce;
  wf.replace(wf.find("run = \"if"), 0, "retry = { on = [\"failure\"] }\n");
  TempRepo repo(wf);
  repo.crash_when("crash2", [&] { return repo.exists("b.marker"); });
  RunResult r = repo.resume("crash2");
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("b").status == "failed");
  BOOST_TEST(r.step("b").reason.find("interrupted") != std::string::npos, r.step("b").reason);
  BOOST_TEST(r.step("c").status == "skipped");
}

BOOST_AUTO_TEST_CASE(failures_are_retried_with_fixed_backoff_until_success) {
  TempRepo repo(R"(
[[steps]]
id = "flaky"
retry = { attempts = 3, backoff = "fixed", delay = "50ms", jitter = false }
run = "echo x >> tries; [ $(wc -l < tries) -ge 3 ] || { echo 'not yet'; exit 2; }"
)");
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("flaky").attempts == 3);
  auto& list = r.step("flaky").attempt_list;
  BOOST_REQUIRE(list.size() == 3u);
  BOOST_TEST(*list[0].exit_code == 2);
  BOOST_TEST(list[0].output_tail == "not yet\n");
  BOOST_TEST(*list[2].exit_code == 0);
  auto retries = events_of(r, "step.retrying");
  BOOST_REQUIRE(retries.size() == 2u);
  for (auto& e : retries) BOOST_TEST(e["retry_in_ms"] == 50);
  // The next attempt did not start before its delay had passed.
  BOOST_TEST(list[1].started_at - *list[0].finished_at >= 50);
}

BOOST_AUTO_TEST_CASE(exponential_backoff_doubles_up_to_max_delay_then_fails) {
  TempRepo repo(R"(
[[steps]]
id = "broken"
retry = { attempts = 4, delay = "20ms", max-delay = "50ms", jitter = false }
run = "exit 1"
)");
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("broken").attempts == 4);
  BOOST_TEST(r.step("broken").status == "failed");
  std::vector<int> delays;
  for (auto& e : events_of(r, "step.retrying")) delays.push_back(e["retry_in_ms"].get<int>());
  BOOST_TEST(delays == (std::vector<int>{20, 40, 50}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(jitter_waits_between_half_and_all_of_the_delay) {
  TempRepo repo(R"(
[[steps]]
id = "broken"
retry = { attempts = 6, backoff = "fixed", delay = "40ms" }
run = "exit 1"
)");
  RunResult r = repo.run();
  for (auto& e : events_of(r, "step.retrying")) {
    BOOST_TEST(e["retry_in_ms"].get<int>() >= 20);
    BOOST_TEST(e["retry_in_ms"].get<int>() <= 40);
  }
}

BOOST_AUTO_TEST_CASE(retry_on_selects_which_endings_are_retried) {
  TempRepo timeouts_only(R"(
[[steps]]
id = "s"
retry = { attempts = 3, delay = "1ms", on = ["timeout"] }
run = "exit 1"
)");
  BOOST_TEST(timeouts_only.run().step("s").attempts == 1);
  TempRepo failures_only(R"(
[[steps]]
id = "s"
timeout = "100ms"
retry = { attempts = 3, delay = "1ms", on = ["failure"] }
run = "sleep 5"
)");
  RunResult r = failures_only.run();
  BOOST_TEST(r.step("s").attempts == 1);
  BOOST_TEST(r.step("s").attempt_list.at(0).reason == "timeout");
  TempRepo both(R"(
[[steps]]
id = "s"
timeout = "100ms"
retry = { attempts = 2, delay = "1ms", on = ["timeout"] }
run = "sleep 5"
)");
  BOOST_TEST(both.run().step("s").attempts == 2);
}

BOOST_AUTO_TEST_CASE(a_crash_during_the_backoff_wait_resumes_the_wait_not_the_count) {
  TempRepo repo(R"(
[[steps]]
id = "s"
retry = { attempts = 3, backoff = "fixed", delay = "1500ms", jitter = false }
run = "echo x >> tries; [ $(wc -l < tries) -ge 2 ] || exit 1"
)");
  repo.crash_when("wait1", [&] {
    auto s = repo.stored_step("wait1", "s");
    return s && s->status == "waiting";
  });
  auto before = repo.stored_step("wait1", "s");
  BOOST_REQUIRE(before && before->retry_at);
  int64_t retry_at = *before->retry_at;
  BOOST_TEST(before->failures == 1);
  RunResult r = repo.resume("wait1");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("s").attempts == 2);  // the count went on from 1, not afresh
  BOOST_TEST(r.step("s").attempt_list.at(1).started_at >= retry_at);
  BOOST_TEST(repo.read("tries") == "x\nx\n");
}

BOOST_AUTO_TEST_CASE(a_failed_run_fixed_in_the_repo_resumes_from_the_failure) {
  TempRepo repo(R"(
[[steps]]
id = "a"
run = "echo a >> log"
[[steps]]
id = "b"
needs = ["a"]
run = "bash ./check.sh"
[[steps]]
id = "c"
needs = ["b"]
run = "echo c >> log"
)");
  repo.write("check.sh", "exit 7\n");
  RunResult first = repo.run();
  BOOST_TEST(first.outcome.status == RunStatus::failed);
  BOOST_TEST(first.step("c").status == "skipped");
  repo.write("check.sh", "echo b >> log\n");  // the fix
  RunResult second = repo.resume(first.outcome.run_id);
  BOOST_TEST(second.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\n");  // a ran once
  BOOST_TEST(second.step("b").attempts == 2);
  BOOST_TEST(events_of(second, "run.resumed").at(0)["reset"] == nlohmann::json::array({"b", "c"}));
}

BOOST_AUTO_TEST_CASE(from_reruns_a_step_and_everything_that_needs_it) {
  TempRepo repo(R"(
[[steps]]
id = "a"
run = "echo a >> log"
[[steps]]
id = "b"
needs = ["a"]
run = "echo b >> log"
[[steps]]
id = "c"
needs = ["b"]
run = "echo c >> log"
[[steps]]
id = "d"
needs = ["a"]
run = "echo d >> log"
)");
  RunResult first = repo.run({}, 1);
  BOOST_REQUIRE(first.outcome.status == RunStatus::succeeded);
  std::string nothing = repo.resume_error(first.outcome.run_id);
  BOOST_TEST(nothing.find("already succeeded") != std::string::npos, nothing);
  ResumeOptions from;
  from.from = {"b"};
  RunResult again = repo.resume(first.outcome.run_id, from);
  BOOST_TEST(again.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\nd\nb\nc\n");
  ResumeOptions typo;
  typo.from = {"bb"};
  std::string msg = repo.resume_error(first.outcome.run_id, typo);
  BOOST_TEST(msg.find("no step 'bb'") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(use_current_only_when_completed_steps_are_unchanged) {
  const std::string original = R"(
[[steps]]
id = "a"
run = "echo a >> log"
[[steps]]
id = "b"
needs = ["a"]
run = "exit 1"
)";
  TempRepo repo(original);
  RunResult first = repo.run();
  BOOST_REQUIRE(first.outcome.status == RunStatus::failed);
  std::string path = (repo.root() / "workflow.toml").string();
  // Changing a step that succeeded is refused: its recorded outcome would lie.
  ResumeOptions changed_a;
  changed_a.current = load_text("[[steps]]\nid = \"a\"\nrun = \"echo A >> log\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"true\"\n", path);
  std::string msg = repo.resume_error(first.outcome.run_id, changed_a);
  BOOST_TEST(msg.find("step 'a' (succeeded) is defined differently") != std::string::npos, msg);
  // Fixing the failed step is what --use-current is for.
  ResumeOptions fixed_b;
  fixed_b.current = load_text("[[steps]]\nid = \"a\"\nrun = \"echo a >> log\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"echo b >> log\"\n", path);
  RunResult second = repo.resume(first.outcome.run_id, fixed_b);
  BOOST_TEST(second.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\n");
  // The run now carries the new snapshot.
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_TEST((*store)->load_run(first.outcome.run_id)->workflow_hash == fixed_b.current->hash);
}

BOOST_AUTO_TEST_CASE(the_lease_keeps_a_second_engine_away_until_its_owner_is_gone) {
  TempRepo repo(kHangOnce);
  repo.crash_when("lease1", [&] { return repo.exists("b.marker"); });
  // Pretend a live process on this host holds the run, with a fresh heartbeat.
  pid_t holder = fork();
  if (holder == 0) {
    pause();
    _exit(0);
  }
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::string owner = std::to_string(holder) + "@" + host;
  sqlite3* db = nullptr;
  sqlite3_open(repo.state_path().c_str(), &db);
  std::string sql = "UPDATE runs SET lease_owner='" + owner + "', lease_heartbeat=" +
                    std::to_string(hearth::engine::now_ms()) + " WHERE id='lease1'";
  BOOST_REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  std::string msg = repo.resume_error("lease1");
  BOOST_TEST(msg.find("is being run by " + owner) != std::string::npos, msg);
  // Its owner dies: the lease is taken over at once.
  ::kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  RunResult r = repo.resume("lease1");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  // A lease from another host is honoured until its heartbeat goes stale.
  sql = "UPDATE runs SET status='running', lease_owner='1@elsewhere', lease_heartbeat=" +
        std::to_string(hearth::engine::now_ms()) + " WHERE id='lease1'";
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  BOOST_TEST(repo.resume_error("lease1").find("1@elsewhere") != std::string::npos);
  sql = "UPDATE runs SET lease_heartbeat=" + std::to_string(hearth::engine::now_ms() - hearth::engine::kLeaseStaleMs - 1) +
        " WHERE id='lease1'";
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  BOOST_TEST(repo.resume("lease1").outcome.status == RunStatus::succeeded);
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_TEST((*store)->load_run("lease1")->lease_owner == "");  // released at the end
}

BOOST_AUTO_TEST_SUITE_END()
