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

using namespace hearth::testing::cli;

namespace {

// One step that runs, one that fails on its exit code, one skill step whose
// skill does not exist (it fails before it runs: no exit code, no output).
const char* kBroken = R"(
[sandbox]
kind = "local"
[[steps]]
id = "build"
run = "echo compiling"
[[steps]]
id = "check"
needs = ["build"]
run = "exit 3"
[[steps]]
id = "review"
skill = "code-review"
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
  std::string review = line_starting(o.out, "✗ review");
  BOOST_TEST(contains(review, "skill 'code-review' not found"), shown(o));
  BOOST_TEST(contains(review, ".hearth/skills/code-review/SKILL.md"), shown(o));
  BOOST_TEST(contains(line_starting(o.out, "✗ check"), "exited with code 3"), shown(o));

  std::string id = only_run_id(repo);
  BOOST_TEST(lines_of(o.out).back() == "details: hearth show " + id, shown(o));
  // The printed command works as printed.
  Outcome shown_run = repo.hearth({"show", id});
  REQUIRE_EXIT(shown_run, 0);
  BOOST_TEST(contains(shown_run.out, "skill 'code-review' not found"), shown(shown_run));
}

BOOST_AUTO_TEST_CASE(the_show_command_after_a_failed_run_carries_the_state_and_repo_given) {
  Repo repo;
  repo.workflow("broken", kBroken);
  TempDir elsewhere;
  fs::path state = elsewhere.path / "my state.db";
  Outcome o = repo.hearth({"--repo", repo.root().string(), "--state", state.string(), "run", "broken"}, {},
                          elsewhere.path);
  REQUIRE_EXIT(o, 1);
  std::string last = lines_of(o.out).back();
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_match(last, m, std::regex(R"(details: hearth --repo (\S+) --state '(.+)' show (\S+))")),
                        shown(o));
  BOOST_TEST(m[1].str() == repo.root().string());
  BOOST_TEST(m[2].str() == state.string());
  // From another directory, with those options, the run is found.
  Outcome again = repo.hearth({"--repo", m[1].str(), "--state", m[2].str(), "show", m[3].str()}, {}, "/");
  REQUIRE_EXIT(again, 0);
  BOOST_TEST(contains(again.out, "step review  failed"), shown(again));
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

BOOST_AUTO_TEST_SUITE_END()
