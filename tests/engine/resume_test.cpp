// Durable runs: resume after a real crash (the engine process SIGKILLed),
// retries with backoff, the durable backoff wait, --from, --use-current,
// the lease.
#include <signal.h>
#include <sqlite3.h>

#include <set>

#include <boost/test/unit_test.hpp>

#include "tests/engine/faulty_vfs.h"
#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"

using hearth::RunStatus;
using namespace hearth::testing;

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
// `b_more` adds keys to b's table.
std::string hang_once(const std::string& b_more = "") {
  return workflow_toml({
      {.id = "a", .run = "echo a >> journal"},
      {.id = "b",
       .needs = {"a"},
       .run = "if [ -f b.marker ]; then echo b >> journal; exit 0; fi; echo $$ > b.pid; touch b.marker; sleep 30",
       .more = b_more},
      {.id = "c", .needs = {"b"}, .run = "echo c >> journal"},
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resume)

BOOST_AUTO_TEST_CASE(a_crash_mid_step_resumes_without_rerunning_completed_steps) {
  TempRepo repo(hang_once());
  repo.crash_when("crash1", [&] { return repo.exists("b.marker"); });
  auto stored = repo.stored_step("crash1", "b");
  BOOST_REQUIRE(stored);
  BOOST_TEST(stored->status == hearth::StepStatus::running);  // what a crash leaves behind
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

BOOST_AUTO_TEST_CASE(resume_ends_what_an_interrupted_attempt_left_running) {
  // The first attempt leaves a background worker and is not cleaned up by
  // the fixture (no .pid file): after the crash it is still running.
  TempRepo repo(workflow_toml({{.id = "deploy",
                                .run = "if [ -f marker ]; then echo second >> journal; exit 0; fi; (sleep 30; echo late >> journal) & "
                                       "echo $! > worker; touch marker; sleep 30"}}));
  repo.crash_when("orphans", [&] { return repo.exists("marker") && repo.exists("worker"); });
  pid_t worker = std::stoi(repo.read("worker"));
  BOOST_REQUIRE_MESSAGE(::kill(worker, 0) == 0, "the worker should outlive the crashed engine");
  RunResult r = repo.resume("orphans");
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(hearth::testing::process_gone(worker), "the interrupted attempt's worker survived the resume");
  BOOST_TEST(events_of(r, "step.interrupted").at(0)["killed_leftovers"].get<int>() >= 1);
  BOOST_TEST(repo.read("journal") == "second\n");
}

BOOST_AUTO_TEST_CASE(an_interrupted_step_that_excludes_interruption_fails) {
  TempRepo repo(hang_once(R"(retry = { on = ["failure"] })"));
  repo.crash_when("crash2", [&] { return repo.exists("b.marker"); });
  RunResult r = repo.resume("crash2");
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("b").status == hearth::StepStatus::failed);
  BOOST_TEST(r.step("b").reason.find("interrupted") != std::string::npos, r.step("b").reason);
  BOOST_TEST(r.step("c").status == hearth::StepStatus::skipped);
}

BOOST_AUTO_TEST_CASE(failures_are_retried_with_fixed_backoff_until_success) {
  TempRepo repo(workflow_toml({{.id = "flaky",
                                .run = "echo x >> tries; [ $(wc -l < tries) -ge 3 ] || { echo 'not yet'; exit 2; }",
                                .more = R"(retry = { attempts = 3, backoff = "fixed", delay = "50ms", jitter = false })"}}));
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
  TempRepo repo(workflow_toml(
      {{.id = "broken", .run = "exit 1", .more = R"(retry = { attempts = 4, delay = "20ms", max-delay = "50ms", jitter = false })"}}));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("broken").attempts == 4);
  BOOST_TEST(r.step("broken").status == hearth::StepStatus::failed);
  std::vector<int> delays;
  for (auto& e : events_of(r, "step.retrying")) delays.push_back(e["retry_in_ms"].get<int>());
  BOOST_TEST(delays == (std::vector<int>{20, 40, 50}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(jitter_waits_between_half_and_all_of_the_delay) {
  TempRepo repo(workflow_toml({{.id = "broken", .run = "exit 1", .more = R"(retry = { attempts = 6, backoff = "fixed", delay = "40ms" })"}}));
  RunResult r = repo.run();
  for (auto& e : events_of(r, "step.retrying")) {
    BOOST_TEST(e["retry_in_ms"].get<int>() >= 20);
    BOOST_TEST(e["retry_in_ms"].get<int>() <= 40);
  }
}

BOOST_AUTO_TEST_CASE(retry_on_selects_which_endings_are_retried) {
  // Step s runs `run`, with `more` (its retry and timeout keys).
  auto step_s = [](const std::string& run, const std::string& more) { return workflow_toml({{.id = "s", .run = run, .more = more}}); };
  TempRepo timeouts_only(step_s("exit 1", R"(retry = { attempts = 3, delay = "1ms", on = ["timeout"] })"));
  BOOST_TEST(timeouts_only.run().step("s").attempts == 1);
  TempRepo failures_only(step_s("sleep 5", "timeout = \"100ms\"\n" R"(retry = { attempts = 3, delay = "1ms", on = ["failure"] })"));
  RunResult r = failures_only.run();
  BOOST_TEST(r.step("s").attempts == 1);
  BOOST_TEST(r.step("s").attempt_list.at(0).reason == "timeout");
  TempRepo both(step_s("sleep 5", "timeout = \"100ms\"\n" R"(retry = { attempts = 2, delay = "1ms", on = ["timeout"] })"));
  BOOST_TEST(both.run().step("s").attempts == 2);
}

BOOST_AUTO_TEST_CASE(a_crash_during_the_backoff_wait_resumes_the_wait_not_the_count) {
  TempRepo repo(workflow_toml({{.id = "s",
                                .run = "echo x >> tries; [ $(wc -l < tries) -ge 2 ] || exit 1",
                                .more = R"(retry = { attempts = 3, backoff = "fixed", delay = "1500ms", jitter = false })"}}));
  repo.crash_when("wait1", [&] {
    auto s = repo.stored_step("wait1", "s");
    return s && s->status == hearth::StepStatus::waiting;
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
  TempRepo repo(workflow_toml({
      {.id = "a", .run = "echo a >> log"},
      {.id = "b", .needs = {"a"}, .run = "bash ./check.sh"},
      {.id = "c", .needs = {"b"}, .run = "echo c >> log"},
  }));
  repo.write("check.sh", "exit 7\n");
  RunResult first = repo.run();
  BOOST_TEST(first.outcome.status == RunStatus::failed);
  BOOST_TEST(first.step("c").status == hearth::StepStatus::skipped);
  repo.write("check.sh", "echo b >> log\n");  // the fix
  RunResult second = repo.resume(first.outcome.run_id);
  BOOST_TEST(second.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\n");  // a ran once
  BOOST_TEST(second.step("b").attempts == 2);
  BOOST_TEST(events_of(second, "run.resumed").at(0)["reset"] == nlohmann::json::array({"b", "c"}));
}

// The store keeps a run's steps by id; a resume reads them in that order
// and places each by its id. Ids that sort against the workflow's order
// still resume each step as itself, and the run shows them in workflow order.
BOOST_AUTO_TEST_CASE(steps_whose_ids_sort_against_the_workflow_order_resume_as_themselves) {
  TempRepo repo(workflow_toml({
      {.id = "zulu", .run = "echo zulu >> log"},
      {.id = "mike", .needs = {"zulu"}, .run = "bash ./check.sh"},
      {.id = "alpha", .needs = {"mike"}, .run = "echo alpha >> log"},
  }));
  repo.write("check.sh", "exit 3\n");
  RunResult first = repo.run();
  BOOST_TEST(first.outcome.status == RunStatus::failed);
  repo.write("check.sh", "echo mike >> log\n");
  RunResult second = repo.resume(first.outcome.run_id);
  BOOST_TEST(second.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "zulu\nmike\nalpha\n");
  BOOST_TEST(second.step("zulu").attempts == 1);
  BOOST_TEST(second.step("mike").attempts == 2);
  BOOST_TEST(second.step("alpha").attempts == 1);
  BOOST_TEST(events_of(second, "run.resumed").at(0)["reset"] == nlohmann::json::array({"mike", "alpha"}));
}

BOOST_AUTO_TEST_CASE(from_reruns_a_step_and_everything_that_needs_it) {
  // d needs only a: --from b leaves it alone.
  TempRepo repo(workflow_toml({
      {.id = "a", .run = "echo a >> log"},
      {.id = "b", .needs = {"a"}, .run = "echo b >> log"},
      {.id = "c", .needs = {"b"}, .run = "echo c >> log"},
      {.id = "d", .needs = {"a"}, .run = "echo d >> log"},
  }));
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
  // Step a runs `a`, then b runs `b`.
  auto two = [](const std::string& a, const std::string& b) {
    return workflow_toml({{.id = "a", .run = a}, {.id = "b", .needs = {"a"}, .run = b}});
  };
  TempRepo repo(two("echo a >> log", "exit 1"));
  RunResult first = repo.run();
  BOOST_REQUIRE(first.outcome.status == RunStatus::failed);
  std::string path = (repo.root() / "workflow.toml").string();
  // Changing a step that succeeded is refused: its recorded outcome would lie.
  ResumeOptions changed_a;
  changed_a.current = load_text(two("echo A >> log", "true"), path);
  std::string msg = repo.resume_error(first.outcome.run_id, changed_a);
  BOOST_TEST(msg.find("step 'a' (succeeded) is defined differently") != std::string::npos, msg);
  // Fixing the failed step is what --use-current is for.
  ResumeOptions fixed_b;
  fixed_b.current = load_text(two("echo a >> log", "echo b >> log"), path);
  RunResult second = repo.resume(first.outcome.run_id, fixed_b);
  BOOST_TEST(second.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\n");
  // The run now carries the new snapshot.
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_TEST((*store)->load_run(first.outcome.run_id)->workflow_hash == fixed_b.current->hash);
}

BOOST_AUTO_TEST_CASE(the_lease_keeps_a_second_engine_away_until_its_owner_is_gone) {
  TempRepo repo(hang_once());
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

// Containers that share a hostname: an owner whose pid cannot be seen from
// here (another pid namespace or boot) keeps its run while its heartbeat is
// fresh, however dead that pid looks from this one.
BOOST_AUTO_TEST_CASE(a_lease_from_another_pid_namespace_with_the_same_hostname_is_honoured) {
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);  // a pid with no process behind it here
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::string mine = hearth::engine::lease_owner();
  BOOST_REQUIRE(mine.find(std::string("@") + host + " pidns=") != std::string::npos);
  auto now = hearth::engine::now_ms();
  hearth::engine::RunRecord run;
  run.lease_heartbeat = now;
  run.lease_owner = std::to_string(gone) + "@" + host + " pidns=1 boot=" + "0000 id=feedfacefeedface";
  BOOST_TEST(hearth::engine::lease_alive(run, now), "a live run in another container would be taken over");
  // The same owner in this pid namespace and boot is known to be dead.
  std::string scope = mine.substr(mine.find(' ') + 1, mine.find(" id=") - mine.find(' ') - 1);
  run.lease_owner = std::to_string(gone) + "@" + host + " " + scope + " id=feedfacefeedface";
  BOOST_TEST(!hearth::engine::lease_alive(run, now), "a crashed engine's run on this machine waits for its heartbeat");
  // Every owner's lease ends when its heartbeat goes stale.
  run.lease_owner = std::to_string(gone) + "@" + host + " pidns=1 boot=0000 id=feedfacefeedface";
  BOOST_TEST(!hearth::engine::lease_alive(run, now + hearth::engine::kLeaseStaleMs));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(store_faults)

// For every sync the run would make, a run whose n-th sync fails stops
// cleanly with the store's error, and a resume on a healthy store finishes
// it with every step that was recorded as succeeded run exactly once.
BOOST_AUTO_TEST_CASE(a_failed_commit_stops_the_run_cleanly_and_it_resumes) {
  const std::string wf = workflow_toml({
      {.id = "a", .run = "echo a >> journal"},
      {.id = "b", .needs = {"a"}, .run = "echo b >> journal"},
      {.id = "c", .needs = {"a"}, .run = "echo c >> journal"},
      {.id = "d", .needs = {"b", "c"}, .run = "echo d >> journal"},
  });
  // How many syncs a healthy run makes (opening the store included).
  int total = 0;
  {
    TempRepo probe(wf);
    hearth::testing::FaultyVfs::install();
    probe.use_vfs(hearth::testing::FaultyVfs::kName);
    BOOST_REQUIRE(probe.run().outcome.status == RunStatus::succeeded);
    total = hearth::testing::FaultyVfs::syncs();
  }
  BOOST_REQUIRE(total > 4);
  for (int n = 1; n <= total; ++n) {
    BOOST_TEST_CONTEXT("sync " << n << " of " << total << " fails") {
      TempRepo repo(wf);
      hearth::testing::FaultyVfs::install();
      hearth::testing::FaultyVfs::fail_sync_at(n);
      repo.use_vfs(hearth::testing::FaultyVfs::kName);
      repo.next_run_id_ = "faulty";
      repo.tolerate_start_error_ = true;
      // Opening the store may be what fails; then nothing ran.
      auto opened = hearth::engine::Store::open(repo.state_path(), hearth::testing::FaultyVfs::kName);
      if (!opened.ok()) {
        BOOST_TEST(opened.message().find("state.db") != std::string::npos, opened.message());
        continue;
      }
      opened->reset();
      RunResult broken = repo.run();
      repo.use_vfs(nullptr);
      auto store = hearth::engine::Store::open(repo.state_path());
      BOOST_REQUIRE(store.ok());
      auto run = (*store)->load_run("faulty");
      if (!run.ok()) {  // the very first commit failed: the run never existed
        BOOST_TEST(broken.outcome.status == RunStatus::failed);
        continue;
      }
      if (run->status == hearth::RunStatus::succeeded) continue;  // the fault hit after the last commit that mattered
      BOOST_TEST(broken.outcome.status == RunStatus::failed);
      BOOST_TEST(broken.outcome.error.find("disk I/O error") != std::string::npos, broken.outcome.error);
      BOOST_TEST(run->status == hearth::RunStatus::running);  // as the last good commit left it: resumable
      std::set<std::string> done_before;
      auto steps = (*store)->load_steps("faulty");
      BOOST_REQUIRE(steps.ok());
      for (auto& s : *steps)
        if (s.status == hearth::StepStatus::succeeded) done_before.insert(s.id);
      store->reset();
      RunResult resumed = repo.resume("faulty");
      BOOST_TEST(resumed.outcome.status == RunStatus::succeeded);
      std::string journal = repo.read("journal");
      for (auto& id : done_before) {
        size_t count = 0;
        for (size_t pos = 0; (pos = journal.find(id + "\n", pos)) != std::string::npos; ++pos) ++count;
        BOOST_TEST(count == 1u, "step " << id << " recorded as succeeded ran " << count << " times");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_database_locked_by_another_process_stops_the_run_and_it_resumes) {
  TempRepo repo(workflow_toml({{.id = "a", .run = "echo a >> journal"}, {.id = "b", .needs = {"a"}, .run = "echo b >> journal"}}));
  repo.next_run_id_ = "locked";
  sqlite3* other = nullptr;
  RunResult broken = repo.run({}, 0, [&](hearth::engine::Engine&, hearth::testing::Recorder& rec, const std::string&) {
    rec.on_each = [&](const hearth::engine::EventRecord& e) {
      // Once a's start is committed, someone else takes the write lock and keeps it.
      if (e.type == "step.started" && e.step_id == "a" && !other) {
        sqlite3_open(repo.state_path().c_str(), &other);
        BOOST_REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
      }
    };
  });
  BOOST_TEST(broken.outcome.status == RunStatus::failed);
  BOOST_TEST(broken.outcome.error.find("database is locked") != std::string::npos, broken.outcome.error);
  BOOST_TEST(broken.outcome.error.find("state.db") != std::string::npos, broken.outcome.error);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  RunResult resumed = repo.resume("locked");
  BOOST_TEST(resumed.outcome.status == RunStatus::succeeded);
  BOOST_TEST(resumed.step("b").status == hearth::StepStatus::succeeded);
}

BOOST_AUTO_TEST_CASE(a_full_disk_is_reported_not_fatal) {
  TempRepo repo("[[steps]]\nid = \"a\"\nrun = \"true\"\n");
  { BOOST_REQUIRE(hearth::engine::Store::open(repo.state_path()).ok()); }
  hearth::testing::FaultyVfs::install();
  hearth::testing::FaultyVfs::fail_write_at(1);
  auto store = hearth::engine::Store::open(repo.state_path(), hearth::testing::FaultyVfs::kName);
  BOOST_REQUIRE(store.ok());
  BOOST_REQUIRE((*store)->begin().ok());
  auto s = (*store)->insert_run({"r", "wf", "wf.toml", "h", "t", {}, "/", hearth::RunStatus::running, 1, {}, "", "", 0});
  if (s.ok()) s = (*store)->commit();
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("database or disk is full") != std::string::npos, s.message());
  hearth::testing::FaultyVfs::fail_write_at(0);
}

BOOST_AUTO_TEST_CASE(a_store_from_schema_version_1_is_migrated_with_its_runs) {
  hearth::testing::TempDir dir;
  std::string path = (dir.path / "state.db").string();
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  // The schema as version 1 wrote it.
  const char* v1 = R"sql(
CREATE TABLE runs (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, workflow_path TEXT NOT NULL,
  workflow_hash TEXT NOT NULL, workflow_text TEXT NOT NULL, payload TEXT NOT NULL, repo TEXT NOT NULL,
  status TEXT NOT NULL, created_at INTEGER NOT NULL, finished_at INTEGER, error TEXT NOT NULL DEFAULT '');
CREATE INDEX runs_by_created ON runs(created_at);
CREATE TABLE steps (run_id TEXT NOT NULL REFERENCES runs(id), step_id TEXT NOT NULL, position INTEGER NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, started_at INTEGER,
  finished_at INTEGER, outputs TEXT NOT NULL DEFAULT '{}', reason TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id));
CREATE TABLE attempts (run_id TEXT NOT NULL, step_id TEXT NOT NULL, number INTEGER NOT NULL,
  started_at INTEGER NOT NULL, finished_at INTEGER, exit_code INTEGER, signal INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '', output_tail BLOB NOT NULL DEFAULT x'', output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number), FOREIGN KEY (run_id, step_id) REFERENCES steps(run_id, step_id));
CREATE TABLE events (run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, at INTEGER NOT NULL,
  type TEXT NOT NULL, step_id TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, seq));
INSERT INTO runs VALUES ('old', 'wf', 'wf.toml', 'sha256:x', '[[steps]]', '{}', '/r', 'failed', 5, 9, '');
INSERT INTO steps (run_id, step_id, position, status, attempts) VALUES ('old', 'a', 0, 'failed', 1);
PRAGMA user_version=1;
)sql";
  BOOST_REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = hearth::engine::Store::open(path);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  auto run = (*store)->load_run("old");
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->status == hearth::RunStatus::failed);
  BOOST_TEST(run->lease_owner == "");
  auto steps = (*store)->load_steps("old");
  BOOST_REQUIRE(steps.ok());
  BOOST_TEST(steps->at(0).failures == 0);
  BOOST_TEST(!steps->at(0).retry_at.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
