// `hearth validate`: everything a run would find wrong only when a step
// starts is reported before anything runs (skills, result schemas), for one
// workflow, several, or every one in .hearth/workflows; `--json` for tools.
// The real built binary in a temporary repository.
#include <filesystem>
#include <regex>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/repo.h"

using namespace hearth::testing::cli;

namespace {

void skill(const Repo& repo, const std::string& name, const std::string& skill_md) {
  write_file(repo.root() / ".hearth" / "skills" / name / "SKILL.md", skill_md);
}

// Four skill steps, each with a different way to be broken, and one good one.
// Each step's table starts on the line given in the comment.
const char* kSkills = R"([[steps]]
id = "missing"
skill = "no-such-skill"
[[steps]]
id = "unparsable"
skill = "broken-yaml"
[[steps]]
id = "escaping"
skill = "elsewhere"
[[steps]]
id = "fine"
skill = "good"
)";

const json* diagnostic_about(const json& diagnostics, const std::string& part) {
  for (auto& d : diagnostics)
    if (contains(d["message"].get<std::string>(), part)) return &d;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_validate)

BOOST_AUTO_TEST_CASE(a_missing_a_broken_and_an_escaping_skill_are_errors_where_the_step_is) {
  Repo repo;
  repo.workflow("agents", kSkills);
  skill(repo, "good", "---\nname: good\ndescription: Does the job.\n---\nDo the job.\n");
  skill(repo, "broken-yaml", "---\nname: [broken-yaml\n---\nbody\n");
  TempDir outside;
  write_file(outside.path / "SKILL.md", "---\nname: elsewhere\ndescription: Outside.\n---\nx\n");
  fs::create_symlink(outside.path, repo.root() / ".hearth" / "skills" / "elsewhere");

  Outcome o = repo.hearth({"validate", "agents"});
  REQUIRE_EXIT(o, 2);
  BOOST_TEST(!contains(o.out, ": ok"), shown(o));
  BOOST_TEST(contains(o.err, "agents.toml:1:1: step 'missing': skill 'no-such-skill' not found"), shown(o));
  BOOST_TEST(contains(o.err, "agents.toml:4:1: step 'unparsable': "), shown(o));
  BOOST_TEST(std::regex_search(o.err, std::regex(R"(broken-yaml/SKILL\.md:[0-9]+:[0-9]+: )")),
             "the place in SKILL.md: " << shown(o));
  BOOST_TEST(contains(o.err, "agents.toml:7:1: step 'escaping': "), shown(o));
  BOOST_TEST(contains(o.err, "leads outside the repository"), shown(o));
  BOOST_TEST(!contains(o.err, "step 'fine'"), shown(o));
  BOOST_TEST(!fs::exists(repo.default_state()), "validate records nothing");

  // What validate said is what a run finds.
  Outcome run = repo.hearth({"run", "agents"});
  REQUIRE_EXIT(run, 1);
  for (std::string step : {"missing", "unparsable", "escaping"})
    BOOST_TEST(contains(run.err, "✗ " + step + ": skill: "), shown(run));
}

BOOST_AUTO_TEST_CASE(a_missing_or_non_compiling_result_schema_is_an_error) {
  Repo repo;
  write_file(repo.root() / ".hearth" / "workflows" / "bad.schema.json", R"({"type": "no-such-type"})");
  write_file(repo.root() / ".hearth" / "workflows" / "good.schema.json", R"({"type": "object"})");
  repo.workflow("results", R"([[steps]]
id = "gone"
prompt = "Summarise."
result = "missing.schema.json"
)");
  Outcome o = repo.hearth({"validate", "results"});
  expect_stderr(o, 2, {"results.toml:4:10: 'result' of step 'gone': cannot read schema file"});

  repo.workflow("results", R"([[steps]]
id = "bad"
prompt = "Summarise."
result = "bad.schema.json"
[[steps]]
id = "inline"
prompt = "Summarise."
result = { type = "object", properties = { x = { "$ref" = "#/nowhere" } } }
[[steps]]
id = "good"
prompt = "Summarise."
result = "good.schema.json"
)");
  o = repo.hearth({"validate", "results"});
  expect_stderr(o, 2,
                {"results.toml:1:1: step 'bad': result schema ",
                 "bad.schema.json: the result schema is not valid JSON Schema",
                 "results.toml:5:1: step 'inline': its inline result schema: "});
  BOOST_TEST(!contains(o.err, "step 'good'"), shown(o));
}

BOOST_AUTO_TEST_CASE(a_step_property_that_does_not_exist_is_an_error_with_did_you_mean) {
  Repo repo;
  repo.workflow("typo", R"([[steps]]
id = "build"
run = "echo v=1 >> $HEARTH_OUTPUT"
[[steps]]
id = "ship"
needs = ["build"]
if = "steps.build.stauts == 'succeeded'"
run = "echo ${{ steps.build.output.v }} ${{ steps.build.outputs.v }} ${{ steps.build['exit-code'] }}"
)");
  Outcome o = repo.hearth({"validate", "typo"});
  expect_stderr(o, 2,
                {"reads steps.build.stauts, which a step does not have (did you mean 'status'?)",
                 "reads steps.build.output, which a step does not have (did you mean 'outputs'?)",
                 "; a step has status, outputs, exit-code, result"});
  BOOST_TEST(!contains(o.err, "reads steps.build.exit-code"), "exit-code is a property: " << shown(o));
  BOOST_TEST(!contains(o.err, "reads steps.build.outputs"), "outputs is a property: " << shown(o));
  BOOST_TEST(std::regex_search(o.err, std::regex(R"(typo\.toml:[0-9]+:[0-9]+: 'if' of step 'ship' reads)")), shown(o));
}

BOOST_AUTO_TEST_CASE(no_argument_checks_every_workflow_in_the_repository) {
  Repo repo;
  repo.workflow("alpha", "[[steps]]\nid = \"a\"\nrun = \"true\"\n");
  repo.workflow("beta", "[[steps]]\nid = \"b\"\nskill = \"absent\"\n");
  repo.workflow("gamma", "[[steps]]\nid = \"c\"\nrun = \"true\"\ntimeout = \"forever\"\n");
  fs::create_directories(repo.root() / "src");
  Outcome o = repo.hearth({"validate"}, {}, repo.root() / "src");
  expect_stdout(o, 2, {"alpha.toml: ok (alpha, 1 step)"});
  BOOST_TEST(contains(o.err, "beta.toml:1:1: step 'b': skill 'absent' not found"), shown(o));
  BOOST_TEST(contains(o.err, "gamma.toml:4:"), shown(o));

  fs::remove(repo.root() / ".hearth" / "workflows" / "beta.toml");
  fs::remove(repo.root() / ".hearth" / "workflows" / "gamma.toml");
  o = repo.hearth({"validate"});
  REQUIRE_EXIT(o, 0);
  BOOST_TEST(o.err.empty(), shown(o));

  fs::remove(repo.root() / ".hearth" / "workflows" / "alpha.toml");
  o = repo.hearth({"validate"});
  expect_stderr(o, 2, {"no workflow files (*.toml)"});
}

BOOST_AUTO_TEST_CASE(json_gives_each_diagnostic_with_file_line_column_severity_and_message) {
  Repo repo;
  repo.workflow("agents", kSkills);
  skill(repo, "good", "---\nname: good\ndescription: Does the job.\n---\nDo the job.\n");
  repo.workflow("ok", "[[steps]]\nid = \"a\"\nrun = \"true\"\n");
  repo.workflow("host", "[commands.deploy]\nhost = true\nallow = [\"*\"]\n[[steps]]\nid = \"a\"\nrun = \"deploy\"\ncommands = [\"deploy\"]\n");
  Outcome o = repo.hearth({"validate", "--json"});
  REQUIRE_EXIT(o, 2);
  BOOST_TEST(o.err.empty(), "diagnostics go in the JSON only: " << shown(o));
  json out = json::parse(o.out);
  BOOST_TEST(out["ok"] == false);
  BOOST_REQUIRE(out["workflows"].size() == 3u);
  for (auto& w : out["workflows"])
    BOOST_TEST(w["ok"] == (!contains(w["file"].get<std::string>(), "agents.toml")), w.dump());

  const json* missing = diagnostic_about(out["diagnostics"], "skill 'no-such-skill' not found");
  BOOST_REQUIRE_MESSAGE(missing, out.dump(2));
  BOOST_TEST((*missing)["file"] == (repo.root() / ".hearth" / "workflows" / "agents.toml").string());
  BOOST_TEST((*missing)["line"] == 1);
  BOOST_TEST((*missing)["column"] == 1);
  BOOST_TEST((*missing)["severity"] == "error");
  BOOST_TEST((*missing)["message"].get<std::string>().rfind("step 'missing': ", 0) == 0u);

  // A host command is named, as a warning: only an embedding program can run it.
  const json* host = diagnostic_about(out["diagnostics"], "[commands.deploy]");
  BOOST_REQUIRE_MESSAGE(host, out.dump(2));
  BOOST_TEST((*host)["severity"] == "warning");
  BOOST_TEST((*host)["line"] == 1);

  // Without a place: a workflow name that does not exist.
  o = repo.hearth({"validate", "--json", "okk"});
  REQUIRE_EXIT(o, 2);
  out = json::parse(o.out);
  BOOST_REQUIRE(out["diagnostics"].size() == 1u);
  BOOST_TEST(out["diagnostics"][0]["line"].is_null());
  BOOST_TEST(contains(out["diagnostics"][0]["message"].get<std::string>(), "did you mean 'ok'?"));
}

BOOST_AUTO_TEST_SUITE_END()
