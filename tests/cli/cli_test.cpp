// The `hearth` command end to end: the real built binary, started as a real
// process with its stdout and stderr on pipes, in a temporary repository with
// a real state database. Asserts what a user sees: exit codes, printed lines,
// and what `hearth runs` / `hearth show` report afterwards.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/repo.h"
#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "tests/support/testdata.h"
#include "tests/support/workflow_toml.h"

extern char** environ;

using namespace hearth::testing;

namespace {

using namespace hearth::testing::cli;

// Two steps; `hello` greets whoever the payload names and records an output.
const char* kGreet = R"(
name = "greet"
[inputs]
count = { type = "integer", required = true }
who = { type = "string", default = "world" }

[[steps]]
id = "hello"
run = '''
echo "hello ${{ inputs.who }} x${{ inputs.count }}"
d=EOF_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
{ echo "greeted<<$d"; echo "${{ inputs.who }}"; echo "$d"; } >> "$HEARTH_OUTPUT"
'''

[[steps]]
id = "bye"
needs = ["hello"]
run = "echo bye"
)";

const std::string kFails = workflow_toml({
    {.id = "build", .run = "echo compiling"},
    {.id = "check", .needs = {"build"}, .run = "echo 'check: 2 problems'; exit 3"},
});

const std::string kOk = workflow_toml({{.id = "only", .run = "echo fine"}});

// A step that prints the pid of a sleep it leaves running, then waits on it;
// a second step that never gets to start.
const char* kSlow = R"(
# Host pids of the step's processes are checked: run them on the host.
[sandbox]
kind = "local"
[[steps]]
id = "wait"
run = '''
sleep 30 &
echo "sleeping as $!"
wait
'''

[[steps]]
id = "after"
needs = ["wait"]
run = "echo after"
)";

// Starts `wait` from kSlow, waits until it is sleeping, sends `sig`, and
// checks what a user sees: exit 130, the sleep gone, the run cancelled.
void interrupting_cancels_the_run(int sig, const std::string& signame) {
  Repo repo;
  repo.workflow("slow", kSlow);
  HearthProcess p({{"run", "slow"}, {}, repo.root()});
  auto sleeping = p.wait_for_stderr(std::regex(R"(\[wait\] sleeping as (\d+)\n)"), 10s);
  BOOST_REQUIRE_MESSAGE(sleeping, "the step never said it was sleeping; stderr so far:\n" + p.err());
  pid_t sleep_pid = std::stoi(*sleeping);

  p.signal(sig);
  Outcome o = p.finish(5s);
  expect_stderr(o, 130, {"cancelling: interrupted by " + signame});
  BOOST_TEST(hearth::testing::process_gone(sleep_pid), "the step's sleep (pid " << sleep_pid << ") is still running");

  json run = repo.show(only_run_id(repo));
  BOOST_TEST(run["status"] == "cancelled");
  BOOST_TEST(step_of(run, "wait")["status"] == "cancelled");
  BOOST_TEST(step_of(run, "after")["status"] == "cancelled");
  BOOST_TEST(contains(run["error"].get<std::string>() + step_of(run, "wait")["reason"].get<std::string>(), signame));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

// --- hearth --help, hearth --version -----------------------------------------

BOOST_AUTO_TEST_CASE(help_alone_prints_what_the_full_command_line_prints) {
  // `hearth --help` alone is answered before the command line is built, from
  // text rendered when hearth was built; with another option before it,
  // CLI11 renders it there and then. A user sees the same either way.
  Repo repo;
  Outcome early = repo.hearth({"--help"});
  Outcome parsed = repo.hearth({"--color", "never", "--help"});
  REQUIRE_EXIT(early, 0);
  REQUIRE_EXIT(parsed, 0);
  BOOST_TEST(early.out == parsed.out);
  BOOST_TEST(repo.hearth({"-h"}).out == parsed.out);
  for (const char* command : {"run", "resume", "validate", "runs", "show", "serve", "ci", "sandbox", "version"})
    BOOST_TEST(contains(early.out, std::string("\n  ") + command + " "), command << " missing from\n" << early.out);
  BOOST_TEST(contains(early.out, "--version"), early.out);
  // A subcommand's help is its own, with its options.
  Outcome run_help = repo.hearth({"run", "--help"});
  REQUIRE_EXIT(run_help, 0);
  BOOST_TEST(contains(run_help.out, "--payload"), run_help.out);
}

BOOST_AUTO_TEST_CASE(version_alone_or_as_a_command_prints_the_version) {
  Repo repo;
  Outcome flag = repo.hearth({"--version"});
  REQUIRE_EXIT(flag, 0);
  BOOST_TEST(std::regex_match(flag.out, std::regex("hearth [0-9][^\\s]*\n")), flag.out);
  BOOST_TEST(repo.hearth({"version"}).out == flag.out);
  BOOST_TEST(repo.hearth({"--color", "never", "--version"}).out == flag.out);
  BOOST_TEST(repo.hearth({"--color", "never", "version"}).out == flag.out);
  // Anything else on the line is still checked.
  Outcome extra = repo.hearth({"--version", "runz"});
  BOOST_TEST(extra.exit_code == 2, shown(extra));
  BOOST_TEST(contains(extra.err, "unknown command 'runz' (did you mean 'run'?)"), shown(extra));
}

// --- hearth run --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(run_a_file_path_prints_plain_step_lines_and_exits_0) {
  Repo repo;
  write_file(repo.root() / "ci" / "ok.toml", kOk);
  for (const std::string& arg : {std::string("ci/ok.toml"), (repo.root() / "ci" / "ok.toml").string()}) {
    Outcome o = repo.hearth({"run", arg});
    REQUIRE_EXIT(o, 0);
    auto lines = lines_of(o.err);
    BOOST_TEST(std::regex_match(lines.at(0), std::regex(R"(run \S+ \(ok\))")), shown(o));
    BOOST_TEST(contains(o.err, "\n▶ only\n"), shown(o));
    BOOST_TEST(contains(o.err, "\n[only] fine\n"), shown(o));
    BOOST_TEST(contains(o.err, "\n✓ only "), shown(o));
    BOOST_TEST(std::regex_match(lines.back(), std::regex(R"(run \S+ succeeded in \S+)")), shown(o));
  }
  json runs = repo.runs();
  BOOST_TEST(runs.size() == 2u);
  BOOST_TEST(runs[0]["status"] == "succeeded");
}

BOOST_AUTO_TEST_CASE(run_a_name_finds_the_workflow_from_a_subdirectory_of_the_repo) {
  Repo repo;
  repo.workflow("ok", kOk);
  fs::create_directories(repo.root() / "src" / "deep");
  Outcome o = repo.hearth({"run", "ok"}, {}, repo.root() / "src" / "deep");
  expect_stderr(o, 0, {"[only] fine\n"});
  BOOST_TEST(fs::exists(repo.default_state()), "the run is recorded in <repo>/.hearth/state.db");
  BOOST_TEST(!fs::exists(repo.root() / "src" / "deep" / ".hearth"));
}

BOOST_AUTO_TEST_CASE(run_a_name_with_repo_from_outside_the_repo) {
  Repo repo;
  repo.workflow("ok", kOk);
  TempDir elsewhere;
  Outcome o = repo.hearth({"--repo", repo.root().string(), "run", "ok"}, {}, elsewhere.path);
  expect_stderr(o, 0, {"[only] fine\n"});
  // --repo also works after the subcommand.
  o = repo.hearth({"run", "ok", "--repo", repo.root().string()}, {}, elsewhere.path);
  REQUIRE_EXIT(o, 0);
  BOOST_TEST(repo.runs().size() == 2u);
  BOOST_TEST(!fs::exists(elsewhere.path / ".hearth"));
}

BOOST_AUTO_TEST_CASE(a_failed_step_exits_1_with_its_output_and_reason) {
  Repo repo;
  repo.workflow("fails", kFails);
  Outcome o = repo.hearth({"run", "fails"});
  expect_stderr(o, 1, {"[build] compiling\n", "[check] check: 2 problems\n", "✗ check ", "exited with code 3"});
  auto lines = lines_of(o.err);
  BOOST_REQUIRE(lines.size() >= 2u);
  BOOST_TEST(std::regex_match(lines[lines.size() - 2], std::regex(R"(run \S+ failed in \S+)")), shown(o));
  BOOST_TEST(std::regex_match(lines.back(), std::regex(R"(details: hearth show \S+)")), shown(o));
  BOOST_TEST(repo.runs()[0]["status"] == "failed");
}

BOOST_AUTO_TEST_CASE(output_to_a_pipe_has_no_escape_bytes_even_with_a_colour_terminal_type) {
  Repo repo;
  repo.workflow("fails", kFails);
  for (auto env : {std::map<std::string, std::string>{{"TERM", "xterm-256color"}},
                   std::map<std::string, std::string>{{"TERM", "xterm-256color"}, {"NO_COLOR", "1"}}}) {
    Outcome o = repo.hearth({"run", "fails"}, env);
    REQUIRE_EXIT(o, 1);
    BOOST_TEST(!contains(o.out, "\x1b"), "escape byte in stdout:\n" << o.out);
    BOOST_TEST(!contains(o.err, "\x1b"), "escape byte in stderr:\n" << o.err);
    BOOST_TEST(contains(o.err, "[check] check: 2 problems\n"), shown(o));
  }
}

BOOST_AUTO_TEST_CASE(an_unknown_workflow_name_exits_2_listing_the_available_ones) {
  Repo repo;
  repo.workflow("greet", kGreet);
  repo.workflow("deploy", kOk);
  Outcome o = repo.hearth({"run", "gret"});
  expect_stderr(o, 2, {"no workflow named 'gret'", "did you mean 'greet'?", "available: deploy greet"});
  BOOST_TEST(o.out.empty(), shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()));
}

BOOST_AUTO_TEST_CASE(payload_as_json_text_reaches_the_steps) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"run", "greet", "--payload", R"({"count": 2, "who": "json"})"});
  expect_stderr(o, 0, {"[hello] hello json x2\n"});
  json run = repo.show(only_run_id(repo));
  BOOST_TEST(run["payload"] == json::parse(R"({"count": 2, "who": "json"})"));
}

BOOST_AUTO_TEST_CASE(payload_from_a_file_reaches_the_steps) {
  Repo repo;
  repo.workflow("greet", kGreet);
  write_file(repo.root() / "event.json", R"({"count": 5, "who": "file"})");
  Outcome o = repo.hearth({"run", "greet", "--payload", "@event.json"});
  expect_stderr(o, 0, {"[hello] hello file x5\n"});
}

BOOST_AUTO_TEST_CASE(inputs_are_typed_by_the_inputs_schema_and_override_the_payload) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"run", "greet", "--payload", R"({"count": 1, "who": "payload"})", "--input", "count=3",
                           "-i", "who=flag"});
  expect_stderr(o, 0, {"[hello] hello flag x3\n"});
  json run = repo.show(only_run_id(repo));
  BOOST_TEST(run["payload"]["count"] == 3);  // an integer, not the string "3"
  BOOST_TEST(run["payload"]["who"] == "flag");
  // A default fills in what is not given.
  o = repo.hearth({"run", "greet", "-i", "count=7"});
  expect_stderr(o, 0, {"[hello] hello world x7\n"});
}

BOOST_AUTO_TEST_CASE(an_input_that_is_not_of_its_type_exits_2_naming_it_and_records_nothing) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"run", "greet", "--input", "count=abc"});
  expect_stderr(o, 2, {"'count'", "integer"});
  o = repo.hearth({"run", "greet", "--input", "count"});
  expect_stderr(o, 2, {"key=value"});
  BOOST_TEST(repo.runs() == json::array());
}

BOOST_AUTO_TEST_CASE(an_unreadable_payload_exits_2_naming_the_cause) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"run", "greet", "--payload", R"({"count": )"});
  expect_stderr(o, 2, {"--payload: invalid JSON"});

  write_file(repo.root() / "broken.json", "{\"count\": 1,,}");
  o = repo.hearth({"run", "greet", "--payload", "@broken.json"});
  expect_stderr(o, 2, {"broken.json: invalid JSON"});

  o = repo.hearth({"run", "greet", "--payload", "@missing.json"});
  expect_stderr(o, 2, {"cannot read missing.json"});

  o = repo.hearth({"run", "greet", "--payload", "[1, 2]"});
  expect_stderr(o, 2, {"must be a JSON object"});

  BOOST_TEST(repo.runs() == json::array());
}

BOOST_AUTO_TEST_CASE(a_payload_missing_a_required_input_exits_2_and_records_no_run) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"run", "greet", "--payload", R"({"who": "nobody"})"});
  expect_stderr(o, 2, {"[inputs]", "count"});
  BOOST_TEST(!contains(o.out + o.err, "[hello]"), shown(o));
  BOOST_TEST(repo.runs() == json::array());
}

BOOST_AUTO_TEST_CASE(jobs_must_be_at_least_1) {
  Repo repo;
  repo.workflow("ok", kOk);
  for (std::string bad : {"0", "-1", "many"}) {
    Outcome o = repo.hearth({"run", "ok", "--jobs", bad});
    expect_stderr(o, 2, {"--jobs"});
    BOOST_TEST(o.err.size() < 200u, "a short message, not: " << o.err);
  }
  BOOST_TEST(repo.runs() == json::array());
}

BOOST_AUTO_TEST_CASE(jobs_1_runs_one_step_at_a_time) {
  Repo repo;
  std::string wf;
  for (int i = 0; i < 3; ++i)
    wf += "[[steps]]\nid = \"s" + std::to_string(i) + "\"\nrun = \"echo start >> log; sleep 0.05; echo end >> log\"\n";
  repo.workflow("three", wf);
  Outcome o = repo.hearth({"run", "three", "--jobs", "1"});
  REQUIRE_EXIT(o, 0);
  auto log = lines_of(read_file(repo.root() / "log"));
  BOOST_REQUIRE(log.size() == 6u);
  for (size_t i = 0; i < log.size(); ++i) BOOST_TEST(log[i] == (i % 2 == 0 ? "start" : "end"));
}

// --- hearth validate ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(validate_a_good_workflow_says_ok) {
  Repo repo;
  repo.workflow("greet", kGreet);
  Outcome o = repo.hearth({"validate", "greet"});
  expect_stdout(o, 0, {"greet.toml: ok (greet, 2 steps)"});
  BOOST_TEST(o.err.empty(), shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()), "validate records nothing");
}

BOOST_AUTO_TEST_CASE(validate_a_broken_workflow_reports_every_error_at_file_line_col) {
  Repo repo;
  write_file(repo.root() / "broken.toml", R"(name = "broken"
[[steps]]
id = "a"
needs = ["nope"]
run = "true"

[[steps]]
id = "a"
run = "true"
timeout = "forever"
)");
  repo.workflow("ok", kOk);
  Outcome o = repo.hearth({"validate", "broken.toml", "ok"});
  REQUIRE_EXIT(o, 2);
  auto errors = lines_of(o.err);
  BOOST_TEST(errors.size() >= 3u, shown(o));
  for (auto& line : errors)
    BOOST_TEST(std::regex_match(line, std::regex(R"(broken\.toml:[0-9]+:[0-9]+: .+)")), "not file:line:col: " << line);
  BOOST_TEST(contains(o.err, "'nope'"), shown(o));
  BOOST_TEST(contains(o.err, "duplicate step id 'a'"), shown(o));
  BOOST_TEST(contains(o.err, "'forever'"), shown(o));
  BOOST_TEST(contains(o.out, "ok.toml: ok"), "the good file is still checked: " << shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()), "validate records nothing");
  BOOST_TEST(repo.runs() == json::array());
}

// --- hearth runs -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(runs_lists_runs_newest_first_in_a_table) {
  Repo repo;
  repo.workflow("ok", kOk);
  repo.workflow("fails", kFails);
  Outcome o = repo.hearth({"runs"});
  expect_stdout(o, 0, {"no runs yet"});
  REQUIRE_EXIT(repo.hearth({"run", "ok"}), 0);
  REQUIRE_EXIT(repo.hearth({"run", "fails"}), 1);
  json ids = repo.runs();

  o = repo.hearth({"runs"});
  REQUIRE_EXIT(o, 0);
  auto lines = lines_of(o.out);
  BOOST_REQUIRE_MESSAGE(lines.size() == 3u, shown(o));
  BOOST_TEST(std::regex_match(lines[0], std::regex(R"(ID +WORKFLOW +STATUS +STARTED +DURATION)")), lines[0]);
  std::string when = R"( +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+(\.\d+)?(ms|s))";
  BOOST_TEST(std::regex_match(lines[1], std::regex(ids[0]["id"].get<std::string>() + " +fails +failed" + when)), lines[1]);
  BOOST_TEST(std::regex_match(lines[2], std::regex(ids[1]["id"].get<std::string>() + " +ok +succeeded" + when)), lines[2]);
}

BOOST_AUTO_TEST_CASE(runs_json_is_an_array_filtered_by_limit_and_workflow) {
  Repo repo;
  repo.workflow("ok", kOk);
  repo.workflow("fails", kFails);
  BOOST_TEST(repo.runs() == json::array());
  REQUIRE_EXIT(repo.hearth({"run", "ok"}), 0);
  REQUIRE_EXIT(repo.hearth({"run", "fails"}), 1);
  REQUIRE_EXIT(repo.hearth({"run", "ok"}), 0);

  json all = repo.runs();
  BOOST_REQUIRE(all.is_array());
  BOOST_REQUIRE(all.size() == 3u);
  std::vector<std::string> order;
  for (auto& r : all) {
    order.push_back(r["workflow"]);
    BOOST_TEST(r["id"].is_string());
    BOOST_TEST(std::regex_match(r["started_at"].get<std::string>(),
                                std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")), r.dump());
    BOOST_TEST((r["duration_ms"].is_number_integer() && r["duration_ms"] >= 0), r.dump());
  }
  BOOST_TEST(order == (std::vector<std::string>{"ok", "fails", "ok"}));
  BOOST_TEST(all[0]["status"] == "succeeded");
  BOOST_TEST(all[1]["status"] == "failed");

  json newest = repo.runs({"--limit", "1"});
  BOOST_REQUIRE(newest.size() == 1u);
  BOOST_TEST(newest[0]["id"] == all[0]["id"]);

  json oks = repo.runs({"--workflow", "ok"});
  BOOST_REQUIRE(oks.size() == 2u);
  BOOST_TEST(oks[0]["id"] == all[0]["id"]);
  BOOST_TEST(oks[1]["id"] == all[2]["id"]);
  BOOST_TEST(repo.runs({"-w", "nothing-by-this-name"}) == json::array());

  Outcome o = repo.hearth({"runs", "--limit", "0"});
  expect_stderr(o, 2, {"--limit"});
}

// --- hearth show -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(show_prints_each_step_with_status_attempts_exit_code_outputs_and_last_lines) {
  Repo repo;
  repo.workflow("greet", kGreet);
  repo.workflow("fails", kFails);
  write_file(repo.root() / ".hearth" / "workflows" / "chatty.toml", R"(
[[steps]]
id = "chatty"
run = "for i in $(seq 1 30); do echo line $i; done"
)");
  REQUIRE_EXIT(repo.hearth({"run", "greet", "-i", "count=1", "-i", "who=show"}), 0);
  Outcome o = repo.hearth({"show", only_run_id(repo)});
  expect_stdout(o, 0,
                {"status    succeeded\n", "\nstep hello  succeeded  attempts 1  exit 0  ", "  output greeted = show\n",
                 "    | hello show x1\n", "\nstep bye  succeeded  attempts 1  exit 0  "});

  REQUIRE_EXIT(repo.hearth({"run", "fails"}), 1);
  o = repo.hearth({"show", repo.runs({"-w", "fails"})[0]["id"]});
  expect_stdout(o, 0,
                {"status    failed\n", "\nstep check  failed  attempts 1  exit 3  ", "  reason: exited with code 3\n",
                 "    | check: 2 problems\n"});

  REQUIRE_EXIT(repo.hearth({"run", "chatty"}), 0);
  o = repo.hearth({"show", repo.runs({"-w", "chatty"})[0]["id"]});
  expect_stdout(o, 0, {"    | line 30\n", "    | line 11\n"});
  BOOST_TEST(!contains(o.out, "    | line 10\n"), "only the last lines: " << shown(o));
}

BOOST_AUTO_TEST_CASE(show_json_reports_steps_with_attempts_exit_code_outputs_and_output_tail) {
  Repo repo;
  repo.workflow("fails", kFails);
  REQUIRE_EXIT(repo.hearth({"run", "fails"}), 1);
  std::string id = only_run_id(repo);
  json run = repo.show(id);
  BOOST_TEST(run["id"] == id);
  BOOST_TEST(run["workflow"] == "fails");
  BOOST_TEST(run["status"] == "failed");
  BOOST_TEST(run["duration_ms"].is_number_integer());
  BOOST_REQUIRE(run["steps"].size() == 2u);

  const json& build = step_of(run, "build");
  BOOST_TEST(build["status"] == "succeeded");
  BOOST_TEST(build["attempts"] == 1);
  BOOST_TEST(build["exit_code"] == 0);
  BOOST_TEST(build["outputs"] == json::object());
  BOOST_TEST(build.value("output_tail", json()) == "compiling\n");

  const json& check = step_of(run, "check");
  BOOST_TEST(check["status"] == "failed");
  BOOST_TEST(check["attempts"] == 1);
  BOOST_TEST(check["exit_code"] == 3);
  BOOST_TEST(check["reason"] == "exited with code 3");
  BOOST_TEST(check.value("output_tail", json()) == "check: 2 problems\n");
  BOOST_REQUIRE(check["attempt_list"].size() == 1u);
  BOOST_TEST(check["attempt_list"][0]["exit_code"] == 3);
  BOOST_TEST(check["attempt_list"][0]["output_tail"] == "check: 2 problems\n");

  repo.workflow("greet", kGreet);
  REQUIRE_EXIT(repo.hearth({"run", "greet", "-i", "count=1", "-i", "who=json"}), 0);
  run = repo.show(repo.runs({"-w", "greet"})[0]["id"]);
  BOOST_TEST(step_of(run, "hello")["outputs"] == json::parse(R"({"greeted": "json"})"));
}

BOOST_AUTO_TEST_CASE(show_an_unknown_id_exits_2_naming_it) {
  Repo repo;
  repo.workflow("ok", kOk);
  REQUIRE_EXIT(repo.hearth({"run", "ok"}), 0);
  for (auto args : {std::vector<std::string>{"show", "20000101-000000-abcdef"},
                    std::vector<std::string>{"show", "--json", "20000101-000000-abcdef"}}) {
    Outcome o = repo.hearth(args);
    expect_stderr(o, 2, {"'20000101-000000-abcdef'"});
    BOOST_TEST(o.out.empty(), shown(o));
  }
}

// --- --events jsonl ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(events_jsonl_prints_only_events_on_stdout_and_step_output_on_stderr) {
  Repo repo;
  repo.workflow("fails", kFails);
  Outcome o = repo.hearth({"run", "fails", "--events", "jsonl"});
  REQUIRE_EXIT(o, 1);
  auto lines = lines_of(o.out);
  BOOST_REQUIRE_MESSAGE(lines.size() >= 6u, shown(o));
  std::vector<json> events;
  for (auto& line : lines) {
    try {
      events.push_back(json::parse(line));
    } catch (const json::exception& e) {
      BOOST_FAIL("not a JSON line (" << e.what() << "): " << line);
    }
  }
  std::string run_id = only_run_id(repo);
  for (size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(events[i]["seq"] == i + 1, events[i].dump());
    BOOST_TEST(events[i]["run"] == run_id, events[i].dump());
  }
  BOOST_TEST(events.front()["type"] == "run.started");
  BOOST_TEST(events.back()["type"] == "run.finished");
  BOOST_TEST(events.back()["data"]["status"] == "failed");
  bool check_failed = false;
  for (auto& e : events) check_failed |= e["type"] == "step.failed" && e["step"] == "check" && e["data"]["exit_code"] == 3;
  BOOST_TEST(check_failed, shown(o));

  BOOST_TEST(contains(o.err, "[build] compiling\n"), shown(o));
  BOOST_TEST(contains(o.err, "[check] check: 2 problems\n"), shown(o));
  BOOST_TEST(!contains(o.out, "compiling"), shown(o));

  Outcome bad = repo.hearth({"run", "fails", "--events", "xml"});
  expect_stderr(bad, 2, {"--events"});
}

// --- where the state lives ---------------------------------------------------

BOOST_AUTO_TEST_CASE(state_flag_moves_the_database) {
  Repo repo;
  repo.workflow("ok", kOk);
  TempDir elsewhere;
  std::string db = (elsewhere.path / "runs.db").string();
  REQUIRE_EXIT(repo.hearth({"run", "ok", "--state", db}), 0);
  REQUIRE_EXIT(repo.hearth({"--state", db, "run", "ok"}), 0);
  BOOST_TEST(fs::exists(db));
  BOOST_TEST(!fs::exists(repo.default_state()));
  json runs = repo.runs({"--state", db});
  BOOST_REQUIRE(runs.size() == 2u);
  REQUIRE_EXIT(repo.hearth({"show", "--state", db, runs[0]["id"]}), 0);
  BOOST_TEST(repo.runs() == json::array(), "the default database knows nothing of them");
}

BOOST_AUTO_TEST_CASE(hearth_state_variable_moves_the_database_and_the_flag_wins) {
  Repo repo;
  repo.workflow("ok", kOk);
  TempDir elsewhere;
  std::string from_env = (elsewhere.path / "env.db").string();
  std::string from_flag = (elsewhere.path / "flag.db").string();
  REQUIRE_EXIT(repo.hearth({"run", "ok"}, {{"HEARTH_STATE", from_env}}), 0);
  BOOST_TEST(fs::exists(from_env));
  BOOST_TEST(!fs::exists(repo.default_state()));
  Outcome o = repo.hearth({"runs", "--json"}, {{"HEARTH_STATE", from_env}});
  BOOST_TEST(Repo::parse_json(o, "hearth runs --json").size() == 1u);

  REQUIRE_EXIT(repo.hearth({"run", "ok", "--state", from_flag}, {{"HEARTH_STATE", from_env}}), 0);
  BOOST_TEST(repo.runs({"--state", from_flag}).size() == 1u);
  BOOST_TEST(repo.runs({"--state", from_env}).size() == 1u);
}

// --- interrupting a run ------------------------------------------------------

BOOST_AUTO_TEST_CASE(sigint_cancels_the_run_kills_the_step_and_exits_130) {
  interrupting_cancels_the_run(SIGINT, "SIGINT");
}

BOOST_AUTO_TEST_CASE(sigterm_cancels_the_run_kills_the_step_and_exits_130) {
  interrupting_cancels_the_run(SIGTERM, "SIGTERM");
}

BOOST_AUTO_TEST_CASE(run_id_is_idempotent_and_a_rerun_resumes_a_failed_run) {
  Repo repo;
  repo.workflow("ship", workflow_toml({
                            {.id = "build", .run = "echo build >> journal"},
                            {.id = "publish", .needs = {"build"}, .run = "bash gate.sh && echo publish >> journal"},
                        }));
  write_file(repo.root() / "gate.sh", "echo 'gate closed'; exit 4\n");
  Outcome first = repo.hearth({"run", "ship", "--run-id", "gh-77-ci"});
  expect_stderr(first, 1, {"run gh-77-ci"});
  // "Re-run failed jobs": the same id picks the run up; build is not repeated.
  write_file(repo.root() / "gate.sh", "exit 0\n");
  Outcome second = repo.hearth({"run", "ship", "--run-id", "gh-77-ci"});
  expect_stderr(second, 0, {"resume run gh-77-ci"});
  BOOST_TEST(read_file(repo.root() / "journal") == "build\npublish\n");
  // A succeeded id prints its outcome and runs nothing.
  Outcome third = repo.hearth({"run", "ship", "--run-id", "gh-77-ci"});
  expect_stderr(third, 0, {"run gh-77-ci already succeeded"});
  BOOST_TEST(read_file(repo.root() / "journal") == "build\npublish\n");
  json run = repo.show("gh-77-ci");
  BOOST_TEST(step_of(run, "publish")["attempts"] == 2);
  BOOST_TEST(step_of(run, "build")["attempts"] == 1);
  BOOST_TEST(repo.runs().size() == 1u);
  // The id belongs to its workflow.
  repo.workflow("other", kOk);
  Outcome wrong = repo.hearth({"run", "other", "--run-id", "gh-77-ci"});
  expect_stderr(wrong, 2, {"belongs to a run of workflow 'ship'"});
}

BOOST_AUTO_TEST_CASE(a_killed_engine_leaves_an_interrupted_run_that_resume_all_finishes) {
  Repo repo;
  // A local sandbox: the test follows the step's host pid across the crash.
  repo.workflow("deploy", workflow_toml(
                              {
                                  {.id = "first", .run = "echo first >> journal"},
                                  {.id = "long",
                                   .needs = {"first"},
                                   .run = "if [ -f done-once ]; then echo long >> journal; exit 0; fi\n"
                                          "touch done-once\nsleep 30 &\necho \"sleeping as $!\"\nwait\n"},
                              },
                              sandbox_head("local")));
  HearthProcess p({{"run", "deploy", "--run-id", "d1"}, {}, repo.root()});
  auto sleeping = p.wait_for_stderr(std::regex(R"(\[long\] sleeping as (\d+)\n)"), 10s);
  BOOST_REQUIRE_MESSAGE(sleeping, "the step never started; stderr so far:\n" + p.err());
  pid_t sleep_pid = std::stoi(*sleeping);
  p.signal(SIGKILL);  // a crash: no cancellation, no cleanup
  Outcome killed = p.finish(5s);
  BOOST_TEST(killed.exit_code == -SIGKILL);
  BOOST_TEST(::kill(sleep_pid, 0) == 0, "the step should outlive the crashed engine");
  BOOST_TEST(repo.runs()[0]["status"] == "interrupted");
  Outcome shown_run = repo.hearth({"show", "d1"});
  BOOST_TEST(contains(shown_run.out, "interrupted (continue it with: hearth resume d1)"), shown(shown_run));
  Outcome resumed = repo.hearth({"resume", "--all"});
  expect_stderr(resumed, 0, {"long: attempt 1 was interrupted"});
  BOOST_TEST(hearth::testing::process_gone(sleep_pid), "the interrupted attempt's sleep survived the resume");
  BOOST_TEST(read_file(repo.root() / "journal") == "first\nlong\n");
  BOOST_TEST(repo.runs()[0]["status"] == "succeeded");
}

// --all takes what a crash left behind; a run another live `hearth` is
// running is that engine's, and only a resume by id says so.
BOOST_AUTO_TEST_CASE(resume_all_leaves_a_run_that_a_live_engine_holds_alone) {
  Repo repo;
  repo.workflow("slow", "[[steps]]\nid = \"long\"\nrun = \"echo started; exec sleep 60\"\n");
  HearthProcess p({{"run", "slow", "--run-id", "s1"}, {}, repo.root()});
  BOOST_REQUIRE_MESSAGE(p.wait_for_stderr(std::regex(R"(\[long\] (started)\n)"), 10s).has_value(),
                        "the step never started; stderr so far:\n" + p.err());
  Outcome all = repo.hearth({"resume", "--all"});
  expect_stderr(all, 0, {"no interrupted runs"});
  Outcome named = repo.hearth({"resume", "s1"});
  expect_stderr(named, 1, {"is being run by"});
  p.signal(SIGINT);
  BOOST_TEST(p.finish(10s).exit_code == 130);
}

BOOST_AUTO_TEST_CASE(resume_from_reruns_a_step_and_says_when_the_file_changed) {
  Repo repo;
  repo.workflow("ship", "[[steps]]\nid = \"a\"\nrun = \"echo a >> journal\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"echo b >> journal\"\n");
  REQUIRE_EXIT(repo.hearth({"run", "ship", "--run-id", "r1"}), 0);
  Outcome nothing = repo.hearth({"resume", "r1"});
  expect_stderr(nothing, 2, {"already succeeded"});
  repo.workflow("ship", "[[steps]]\nid = \"a\"\nrun = \"echo a >> journal\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"echo B >> journal\"\n");
  Outcome again = repo.hearth({"resume", "r1", "--from", "b"});
  expect_stderr(again, 0, {"changed since run r1 started"});
  BOOST_TEST(read_file(repo.root() / "journal") == "a\nb\nb\n");  // the snapshot, not the file
  REQUIRE_EXIT(repo.hearth({"resume", "r1", "--from", "b", "--use-current"}), 0);
  BOOST_TEST(read_file(repo.root() / "journal") == "a\nb\nb\nB\n");
  Outcome none = repo.hearth({"resume", "--all"});
  expect_stderr(none, 0, {"no interrupted runs"});
}

BOOST_AUTO_TEST_SUITE_END()
