// What `hearth` says when something went wrong: a failed run names each
// failed step's cause and the command to read the run back; bad inputs,
// unknown subcommands and invalid workflows are named with a way out. The
// real built binary in a temporary repository, as a user runs it.
#include <filesystem>
#include <regex>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/repo.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::testing::cli;

namespace {

// One step that runs, one that fails on its exit code, one skill step whose
// skill does not exist (it fails before it runs: no exit code, no output).
const std::string kBroken = workflow_toml(
    {
        {.id = "build", .run = "echo compiling"},
        {.id = "check", .needs = {"build"}, .run = "exit 3"},
        {.id = "review", .more = R"(skill = "code-review")"},
    },
    sandbox_head("local"));

// Inputs with the common constraints; `version` is required.
const char* kRelease = R"(
name = "release"
[sandbox]
kind = "local"
[inputs]
version = { type = "string", pattern = "^[0-9]+\\.[0-9]+$", required = true }
channel = { type = "string", enum = ["stable", "beta"], default = "stable" }
count = { type = "integer", minimum = 1 }
[[steps]]
id = "ship"
run = "echo shipping ${{ inputs.version }}"
)";

// The line of `text` that starts with `prefix`, or "".
std::string line_starting(const std::string& text, const std::string& prefix) {
  for (auto& line : lines_of(text))
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_errors)

// --- a failed run -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_failed_run_names_each_failed_steps_cause_and_ends_with_the_show_command) {
  Repo repo;
  repo.workflow("broken", kBroken);
  Outcome o = repo.hearth({"run", "broken"});
  REQUIRE_EXIT(o, 1);
  std::string review = line_starting(o.err, "✗ review");
  BOOST_TEST(contains(review, "skill 'code-review' not found"), shown(o));
  BOOST_TEST(contains(review, ".hearth/skills/code-review/SKILL.md"), shown(o));
  BOOST_TEST(contains(line_starting(o.err, "✗ check"), "exited with code 3"), shown(o));

  std::string id = only_run_id(repo);
  BOOST_TEST(lines_of(o.err).back() == "details: hearth show " + id, shown(o));
  // The printed command works as printed.
  Outcome shown_run = repo.hearth({"show", id});
  expect_stdout(shown_run, 0, {"skill 'code-review' not found"});
}

BOOST_AUTO_TEST_CASE(the_show_command_after_a_failed_run_carries_the_state_and_repo_given) {
  Repo repo;
  repo.workflow("broken", kBroken);
  TempDir elsewhere;
  fs::path state = elsewhere.path / "my state.db";
  Outcome o = repo.hearth({"--repo", repo.root().string(), "--state", state.string(), "run", "broken"}, {},
                          elsewhere.path);
  REQUIRE_EXIT(o, 1);
  std::string last = lines_of(o.err).back();
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_match(last, m, std::regex(R"(details: hearth --repo (\S+) --state '(.+)' show (\S+))")),
                        shown(o));
  BOOST_TEST(m[1].str() == repo.root().string());
  BOOST_TEST(m[2].str() == state.string());
  // From another directory, with those options, the run is found.
  Outcome again = repo.hearth({"--repo", m[1].str(), "--state", m[2].str(), "show", m[3].str()}, {}, "/");
  expect_stdout(again, 0, {"step review  failed"});
}

BOOST_AUTO_TEST_CASE(a_succeeded_run_prints_no_show_command) {
  Repo repo;
  repo.workflow("ok", "[sandbox]\nkind = \"local\"\n[[steps]]\nid = \"only\"\nrun = \"true\"\n");
  Outcome o = repo.hearth({"run", "ok"});
  REQUIRE_EXIT(o, 0);
  BOOST_TEST(!contains(o.out + o.err, "hearth show"), shown(o));
}

BOOST_AUTO_TEST_CASE(with_events_jsonl_the_show_command_goes_to_stderr_and_stdout_stays_json) {
  Repo repo;
  repo.workflow("broken", kBroken);
  Outcome o = repo.hearth({"run", "broken", "--events", "jsonl"});
  REQUIRE_EXIT(o, 1);
  for (auto& line : lines_of(o.out)) BOOST_TEST(json::accept(line), "not JSON on stdout: " << line);
  BOOST_TEST(contains(o.err, "details: hearth show " + only_run_id(repo)), shown(o));
}

// --- inputs ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_input_the_workflow_does_not_declare_is_refused_with_did_you_mean) {
  Repo repo;
  repo.workflow("release", kRelease);
  Outcome o = repo.hearth({"run", "release", "--input", "versoin=1.2"});
  REQUIRE_EXIT(o, 2);
  BOOST_TEST(contains(o.err, "--input versoin=1.2: workflow 'release' has no input 'versoin' (did you mean 'version'?)"),
             shown(o));
  BOOST_TEST(contains(o.err, "its inputs: channel, count, version"), shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()), "nothing is recorded");

  repo.workflow("plain", "[[steps]]\nid = \"a\"\nrun = \"true\"\n");
  o = repo.hearth({"run", "plain", "-i", "x=1"});
  expect_stderr(o, 2, {"has no input 'x'; it declares no [inputs]", "--payload"});
}

BOOST_AUTO_TEST_CASE(a_missing_input_names_it_and_how_to_pass_it) {
  Repo repo;
  repo.workflow("release", kRelease);
  Outcome o = repo.hearth({"run", "release"});
  REQUIRE_EXIT(o, 2);
  BOOST_TEST(contains(o.err, "release.toml: input 'version' is required (required = true in [inputs]); pass it as "
                             "--input version=..."),
             shown(o));
  BOOST_TEST(!contains(o.err, "the payload"), shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()), "nothing is recorded");
}

BOOST_AUTO_TEST_CASE(an_invalid_input_names_it_its_value_and_the_constraint_it_breaks) {
  Repo repo;
  repo.workflow("release", kRelease);
  Outcome o = repo.hearth({"run", "release", "-i", "version=abc", "-i", "channel=nightly", "-i", "count=0"});
  REQUIRE_EXIT(o, 2);
  BOOST_TEST(contains(o.err, R"(input 'version' is "abc", but it must match the pattern ^[0-9]+\.[0-9]+$ )"
                             R"((pattern = "^[0-9]+\\.[0-9]+$" in [inputs]); pass it as --input version=...)"),
             shown(o));
  BOOST_TEST(contains(o.err, R"(input 'channel' is "nightly", but it must be one of "stable", "beta")"), shown(o));
  BOOST_TEST(contains(o.err, "input 'count' is 0, but it must be at least 1 (minimum = 1 in [inputs])"), shown(o));
  BOOST_TEST(!contains(o.err, "the payload"), shown(o));
  // The same from --payload.
  o = repo.hearth({"run", "release", "--payload", R"({"version": "1.2", "count": 1.5})"});
  expect_stderr(o, 2, {"input 'count' is 1.5, but it must be of type integer"});
  // --input of the wrong type is named before anything runs.
  o = repo.hearth({"run", "release", "-i", "version=1.2", "-i", "count=many"});
  expect_stderr(o, 2, {R"(--input count=many: input 'count' must be an integer (type = "integer"))"});
  BOOST_TEST(!fs::exists(repo.default_state()), "nothing is recorded");

  o = repo.hearth({"run", "release", "-i", "version=1.2", "-i", "count=2"});
  expect_stderr(o, 0, {"[ship] shipping 1.2"});
}

// --- help and unknown commands --------------------------------------------------

// The tests start hearth by its absolute build path: that path must not be
// what help calls the program.
BOOST_AUTO_TEST_CASE(help_calls_the_program_hearth_and_points_to_examples_and_docs) {
  Repo repo;
  std::string bin = hearth::testing::hearth_bin().string();
  for (std::vector<std::string> args : {std::vector<std::string>{"--help"}, {"run", "--help"}, {"validate", "--help"},
                                        {"show", "--help"}, {"sandbox", "run", "--help"}}) {
    Outcome o = repo.hearth(args);
    REQUIRE_EXIT(o, 0);
    std::string usage = line_starting(o.out, "Usage: ");
    std::string expected = "Usage: hearth " + (args.size() > 1 ? args[0] + " " : std::string());
    if (args.size() > 2) expected += args[1] + " ";
    BOOST_TEST(usage.rfind(expected, 0) == 0u, shown(o));
    BOOST_TEST(!contains(o.out, bin), shown(o));
    BOOST_TEST(contains(o.out, "docs/"), shown(o));
    BOOST_TEST(contains(o.out, "\n  hearth "), "no example in:\n" << o.out);
  }
}

BOOST_AUTO_TEST_CASE(an_unknown_command_is_refused_with_did_you_mean) {
  Repo repo;
  Outcome o = repo.hearth({"--repo", repo.root().string(), "rnu", "ok"});
  expect_stderr(o, 2, {"hearth: unknown command 'rnu' (did you mean 'run'?)"});
  BOOST_TEST(contains(o.err, "validate"), "the commands are listed: " << shown(o));
  o = repo.hearth({"shwo", "20261203-125146-2599c1"});
  expect_stderr(o, 2, {"(did you mean 'show'?)"});
  o = repo.hearth({"frobnicate"});
  expect_stderr(o, 2, {"unknown command 'frobnicate'; the commands: "});
  BOOST_TEST(!fs::exists(repo.default_state()));
}

BOOST_AUTO_TEST_SUITE_END()
