// The engine end to end: real processes, a real SQLite file.
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::testing;
using hearth::RunStatus;

namespace {

size_t index_of(const std::vector<std::string>& v, const std::string& s) {
  auto it = std::find(v.begin(), v.end(), s);
  BOOST_REQUIRE_MESSAGE(it != v.end(), "missing line '" + s + "'");
  return static_cast<size_t>(it - v.begin());
}

// A step body that proves another step runs at the same time: it announces
// itself, then waits (bounded) for its peer's announcement.
std::string rendezvous(const std::string& me, const std::string& peer) {
  return "touch " + me + ".started; for i in $(seq 200); do [ -f " + peer + ".started ] && break; sleep 0.02; done; [ -f " +
         peer + ".started ] || { echo 'peer never started'; exit 1; }";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine)

BOOST_AUTO_TEST_CASE(dag_runs_in_dependency_order_and_independent_steps_concurrently) {
  TempRepo repo(workflow_toml({
      {.id = "d", .needs = {"b", "c"}, .run = "echo d >> log"},
      {.id = "a", .run = "echo a >> log"},
      {.id = "b", .needs = {"a"}, .run = rendezvous("b", "c") + "; echo b >> log"},
      {.id = "c", .needs = {"a"}, .run = rendezvous("c", "b") + "; echo c >> log"},
  }));
  RunResult r = repo.run({}, 2);
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  auto log = lines_of(repo.read("log"));
  BOOST_TEST(log.size() == 4u);
  BOOST_TEST(index_of(log, "a") == 0u);
  BOOST_TEST(index_of(log, "d") == 3u);
  for (auto& s : r.steps) BOOST_TEST(s.status == StepStatus::succeeded);
}

// The run's scratch (each attempt's directory, what a step left beside its
// output file) is removed off the loop thread once the run ends, and is gone
// by the time the loop has nothing left to do.
BOOST_AUTO_TEST_CASE(a_finished_run_leaves_no_scratch_behind) {
  TempRepo repo(workflow_toml({
      {.id = "a", .run = "d=$(dirname \"$HEARTH_OUTPUT\"); mkdir -p \"$d/left/deep\"; touch \"$d/left/deep/f\"; "
                         "echo \"$d\""},
      {.id = "b", .needs = {"a"}, .run = "true"},
  }));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  std::string dir = r.succeeded_output("a");
  while (!dir.empty() && dir.back() == '\n') dir.pop_back();
  BOOST_TEST(dir.find("/.hearth/tmp/") != std::string::npos, dir);
  BOOST_TEST(!std::filesystem::exists(dir), dir);
  BOOST_TEST(!std::filesystem::exists(repo.root() / ".hearth" / "tmp" / r.outcome.run_id));
  BOOST_TEST(!std::filesystem::exists(repo.root() / ".hearth" / "grants" / r.outcome.run_id));
}

BOOST_AUTO_TEST_CASE(jobs_bounds_how_many_steps_run_at_once) {
  std::string wf;
  for (int i = 0; i < 4; ++i)
    wf += "[[steps]]\nid = \"s" + std::to_string(i) + "\"\nrun = \"echo start >> log; sleep 0.05; echo end >> log\"\n";
  TempRepo repo(wf);
  RunResult r = repo.run({}, 1);
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  auto log = lines_of(repo.read("log"));
  BOOST_REQUIRE(log.size() == 8u);
  for (size_t i = 0; i < log.size(); ++i) BOOST_TEST(log[i] == (i % 2 == 0 ? "start" : "end"));
}

BOOST_AUTO_TEST_CASE(if_false_skips_the_step_and_its_dependents_still_run) {
  TempRepo repo(workflow_toml(
      {
          {.id = "deploy", .run = "echo deploy >> log", .more = R"(if = "${{ inputs.deploy }}")"},
          {.id = "notify", .needs = {"deploy"}, .run = "echo 'deploy was ${{ steps.deploy.status }}' >> log"},
      },
      R"([inputs]
deploy = { type = "boolean", default = false })"));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("deploy").status == StepStatus::skipped);
  BOOST_TEST(r.step("deploy").attempts == 0);
  BOOST_TEST(r.step("deploy").reason.find("'if' was false") != std::string::npos);
  BOOST_TEST(repo.read("log") == "deploy was skipped\n");
}

BOOST_AUTO_TEST_CASE(a_failed_need_skips_dependents_unless_they_ask_for_failure) {
  TempRepo repo(workflow_toml({
      {.id = "build", .run = "echo compiling; exit 3"},
      {.id = "test", .needs = {"build"}, .run = "echo test >> log"},
      {.id = "report", .needs = {"test"}, .run = "echo report >> log", .more = "if = \"failure()\""},
      {.id = "cleanup", .needs = {"build"}, .run = "echo cleanup >> log", .more = R"(if = "${{ always() }}")"},
  }));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.outcome.exit_code() == 1);
  BOOST_TEST(r.step("build").status == StepStatus::failed);
  BOOST_TEST(*r.step("build").exit_code == 3);
  BOOST_TEST(r.step("build").attempt_list.at(0).output_tail == "compiling\n");
  BOOST_TEST(r.step("test").status == StepStatus::skipped);
  BOOST_TEST(r.step("test").reason == "'build' did not succeed");
  BOOST_TEST(r.step("report").status == StepStatus::succeeded);
  BOOST_TEST(r.step("cleanup").status == StepStatus::succeeded);
  auto log = lines_of(repo.read("log"));
  BOOST_TEST(log.size() == 2u);
  BOOST_TEST(std::count(log.begin(), log.end(), "test") == 0);
}

BOOST_AUTO_TEST_CASE(continue_on_error_keeps_the_run_and_dependents_going) {
  TempRepo repo(workflow_toml({
      {.id = "lint", .run = "exit 1", .more = "continue-on-error = true"},
      {.id = "build", .needs = {"lint"}, .run = "echo 'lint was ${{ steps.lint.status }}' > log"},
  }));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("lint").status == StepStatus::failed);
  BOOST_TEST(repo.read("log") == "lint was failed\n");
}

BOOST_AUTO_TEST_CASE(outputs_flow_between_steps_including_multiline_values) {
  TempRepo repo(R"(
[[steps]]
id = "produce"
run = '''
echo "version=1.4.2" >> "$HEARTH_OUTPUT"
echo "equation=a=b" >> "$HEARTH_OUTPUT"
printf 'notes<<EOF\nline one\nline two\nEOF\n' >> "$HEARTH_OUTPUT"
'''
[[steps]]
id = "consume"
needs = ["produce"]
env = { VERSION = "v${{ steps.produce.outputs.version }}" }
run = '''
echo "$VERSION ${{ steps.produce.outputs.equation }}" > out
echo "${{ steps.produce.outputs.notes }}" >> out
'''
)");
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("produce").outputs["version"] == "1.4.2");
  BOOST_TEST(r.step("produce").outputs["notes"] == "line one\nline two");
  BOOST_TEST(repo.read("out") == "v1.4.2 a=b\nline one\nline two\n");
}

BOOST_AUTO_TEST_CASE(interpolated_payload_cannot_inject_shell_code) {
  const std::string hostile[] = {
      "\"; touch pwned; \"", "'; touch pwned; '", "$(touch pwned)", "`touch pwned`", "a\nb; touch pwned",
      "\"; rm -rf ~; \"",
  };
  for (const auto& value : hostile) {
    TempRepo repo(R"(
[inputs]
title = { type = "string" }
[[steps]]
id = "echo"
run = '''
echo "double: ${{ inputs.title }}" > out
echo bare: ${{ inputs.title }} >> out
echo 'single: ${{ inputs.title }}' >> out
'''
)");
    RunResult r = repo.run({{"title", value}});
    BOOST_TEST(r.outcome.status == RunStatus::succeeded);
    BOOST_TEST(!repo.exists("pwned"), "payload executed: " << value);
    BOOST_TEST(repo.read("out") == "double: " + value + "\nbare: " + value + "\nsingle: " + value + "\n");
  }
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_step_and_everything_it_started) {
  TempRepo repo(workflow_toml({
      {.id = "hang", .run = "sleep 30 & echo $! > child.pid; sleep 30", .more = R"(timeout = "300ms")"},
      {.id = "after", .needs = {"hang"}, .run = "true"},
  }));
  auto started = std::chrono::steady_clock::now();
  RunResult r = repo.run();
  auto elapsed = std::chrono::steady_clock::now() - started;
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("hang").status == StepStatus::failed);
  BOOST_TEST(r.step("hang").attempt_list.at(0).reason == "timeout");
  BOOST_TEST(r.step("hang").reason.find("timed out") != std::string::npos);
  BOOST_TEST(r.step("after").status == StepStatus::skipped);
  // Far less than the 30 s the script asked for: it was killed, not awaited.
  BOOST_TEST((elapsed < std::chrono::seconds(10)));
  pid_t child = std::stoi(repo.read("child.pid"));
  BOOST_TEST(hearth::testing::process_gone(child), "background child " << child << " survived the timeout");
}

BOOST_AUTO_TEST_CASE(cancel_kills_running_steps_and_cancels_pending_ones) {
  TempRepo repo(workflow_toml({{.id = "long", .run = "echo started; sleep 30"}, {.id = "next", .needs = {"long"}, .run = "touch ran"}}));
  RunResult r = repo.run({}, 0, [](hearth::engine::Engine& engine, hearth::testing::Recorder& rec, const std::string& id) {
    rec.on_each = [&engine, id](const hearth::engine::EventRecord& e) {
      if (e.type == "step.started") engine.cancel(id, "test cancelled it");
    };
  });
  BOOST_TEST(r.outcome.status == RunStatus::cancelled);
  BOOST_TEST(r.outcome.exit_code() == 130);
  BOOST_TEST(r.step("long").status == StepStatus::cancelled);
  BOOST_TEST(r.step("next").status == StepStatus::cancelled);
  BOOST_TEST(r.step("next").reason == "test cancelled it");
  BOOST_TEST(!repo.exists("ran"));
  BOOST_TEST(r.events.back().type == "run.finished");
  BOOST_TEST(r.events.back().data["status"] == "cancelled");
}

BOOST_AUTO_TEST_CASE(events_are_numbered_stored_and_delivered_in_order) {
  TempRepo repo(workflow_toml({{.id = "one", .run = "true"}, {.id = "two", .needs = {"one"}, .run = "false"}}));
  RunResult r = repo.run();
  BOOST_REQUIRE(!r.events.empty());
  for (size_t i = 0; i < r.events.size(); ++i) BOOST_TEST(r.events[i].seq == static_cast<int64_t>(i + 1));
  std::vector<std::string> types;
  for (auto& e : r.events) types.push_back(e.type);
  std::vector<std::string> expected = {"run.started", "step.started", "step.succeeded", "step.started", "step.failed", "run.finished"};
  BOOST_TEST(types == expected, boost::test_tools::per_element());
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_REQUIRE(store.ok());
  auto stored = (*store)->load_events(r.outcome.run_id);
  BOOST_REQUIRE(stored.ok());
  BOOST_REQUIRE(stored->size() == r.events.size());
  for (size_t i = 0; i < stored->size(); ++i) {
    BOOST_TEST((*stored)[i].type == r.events[i].type);
    BOOST_TEST((*stored)[i].data == r.events[i].data);
  }
}

BOOST_AUTO_TEST_CASE(payload_is_checked_against_inputs_before_anything_runs) {
  TempRepo repo(R"(
[inputs]
issue = { type = "integer", required = true }
label = { type = "string", default = "triage" }
[[steps]]
id = "s"
run = "echo ${{ inputs.issue }} ${{ inputs.label }} > out"
)");
  std::string missing = repo.start_error(nlohmann::json::object());
  BOOST_TEST(missing.find("issue") != std::string::npos, missing);
  std::string wrong = repo.start_error({{"issue", "twelve"}});
  BOOST_TEST(wrong.find("input 'issue'") != std::string::npos, wrong);
  BOOST_TEST(!repo.exists("out"));
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_TEST((*store)->list_runs(10)->empty());  // nothing recorded for refused runs
  RunResult r = repo.run({{"issue", 12}});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("out") == "12 triage\n");
}

BOOST_AUTO_TEST_CASE(working_directory_and_env_reach_the_script) {
  TempRepo repo(workflow_toml(
      {
          {.id = "mk", .run = "mkdir -p sub/dir"},
          {.id = "in-sub",
           .needs = {"mk"},
           .run = R"(echo "$GREETING $WHO from $(basename $PWD) run $HEARTH_RUN_ID step $HEARTH_STEP_ID" > here)",
           .more = "working-directory = \"sub/dir\"\nenv = { WHO = \"world\" }"},
      },
      "[env]\nGREETING = \"hello\""));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("sub/dir/here") == "hello world from dir run " + r.outcome.run_id + " step in-sub\n");
}

BOOST_AUTO_TEST_CASE(a_missing_working_directory_fails_the_step_with_its_path) {
  TempRepo repo(workflow_toml({{.id = "s", .run = "true", .more = R"(working-directory = "nowhere")"}}));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("s").reason.find("nowhere is not a directory") != std::string::npos, r.step("s").reason);
}

BOOST_AUTO_TEST_CASE(a_malformed_output_file_fails_the_step_and_says_why) {
  TempRepo repo(workflow_toml({{.id = "s", .run = "echo 'no separator here' >> $HEARTH_OUTPUT"}}));
  RunResult r = repo.run();
  BOOST_TEST(r.step("s").status == StepStatus::failed);
  BOOST_TEST(r.step("s").attempt_list.at(0).reason == "output-error");
  BOOST_TEST(r.step("s").reason.find("line 1") != std::string::npos, r.step("s").reason);
}

BOOST_AUTO_TEST_CASE(outputs_that_are_not_utf8_are_stored_not_fatal) {
  TempRepo repo(workflow_toml({
      {.id = "bytes", .run = R"(printf 'raw=\377\376ok\n' >> $HEARTH_OUTPUT; printf '\377\n')"},
      {.id = "after", .needs = {"bytes"}, .run = "true"},
  }));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(r.step("bytes").outputs["raw"].get<std::string>().ends_with("ok"));
  BOOST_TEST(r.step("after").status == StepStatus::succeeded);
}

BOOST_AUTO_TEST_CASE(output_is_streamed_and_its_tail_is_bounded) {
  TempRepo repo(workflow_toml({{.id = "loud", .run = R"(head -c 300000 /dev/zero | tr '\0' 'x'; echo; echo last line)"}}));
  RunResult r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  const auto& a = r.step("loud").attempt_list.at(0);
  BOOST_TEST(a.output_bytes == 300000 + 1 + 10);
  BOOST_TEST(a.output_tail.size() <= 64u * 1024);
  BOOST_TEST(a.output_tail.ends_with("x\nlast line\n"));
  BOOST_TEST(repo.last_output().at("loud").size() == 300011u);  // observers saw all of it
}

BOOST_AUTO_TEST_SUITE_END()
