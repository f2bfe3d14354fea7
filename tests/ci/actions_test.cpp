// The pieces of `hearth ci` against GitHub's own rules: workflow-command
// escaping and file commands byte for byte as the Actions toolkit writes
// them, read back by the runner's rules (tests/ci/runner_rules.h, itself
// checked against the runner's cases), INPUT_* inputs, masks, run ids,
// payloads, the job summary and the log reporter.
#include <cstdio>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "ci/actions_commands.h"
#include "commands/redact.h"
#include "ci/actions_env.h"
#include "ci/actions_event.h"
#include "ci/actions_output.h"
#include "ci/actions_reporter.h"
#include "ci/actions_summary.h"
#include "tests/ci/runner_rules.h"
#include "tests/engine/fixture.h"
#include "tests/support/testdata.h"
#include "workflows/loader.h"

using namespace hearth::testing;
namespace ci = hearth::ci;
namespace runner = hearth::testing::runner;

namespace {

const json& cases() {
  static json c = json::parse(read_file(testdata_dir() / "github-actions" / "workflow-command-cases.json"));
  return c;
}

// The toolkit stringifies non-strings before escaping and drops falsy properties.
std::string toolkit_string(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null() || v == false) return "";
  return v.dump();
}

ci::EnvLookup lookup_in(const json& env) {
  return [env](const std::string& name) -> std::optional<std::string> {
    if (!env.contains(name)) return std::nullopt;
    return env[name].get<std::string>();
  };
}

// Everything an ActionsReporter writes, through a memory stream.
struct Captured {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  ~Captured() {
    std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, len);
  }
};

hearth::engine::EventRecord event(const std::string& run, const std::string& type, const std::string& step,
                                  json data = json::object()) {
  hearth::engine::EventRecord e;
  e.run_id = run;
  e.type = type;
  e.step_id = step;
  e.data = std::move(data);
  return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(actions)

BOOST_AUTO_TEST_CASE(commands_are_escaped_as_the_toolkit_does) {
  int n = 0;
  for (auto& c : cases()["emit_stdout_command"]) {
    std::string command = c["command"], got;
    if (c["properties"].contains("file")) {
      // An annotation: the toolkit orders its fields; the JSON object does not.
      auto& p = c["properties"];
      ci::Annotation a;
      a.title = p["title"];
      a.file = p["file"];
      a.line = p["line"];
      a.end_line = p["endLine"];
      a.col = p["col"];
      a.end_column = p["endColumn"];
      got = ci::format_annotation(command, a, toolkit_string(c["message"]));
    } else {
      ci::Properties props;
      for (auto& [k, v] : c["properties"].items()) props.emplace_back(k, toolkit_string(v));
      got = ci::format_command(command, props, toolkit_string(c["message"]));
    }
    BOOST_TEST(got == c["expect"].get<std::string>(), c["id"].get<std::string>());
    ++n;
  }
  BOOST_TEST(n == 25);
}

BOOST_AUTO_TEST_CASE(annotations_put_properties_in_the_toolkit_order) {
  ci::Annotation a;
  a.title = "A title";
  a.file = "root/test.txt";
  a.line = 5;
  a.end_line = 5;
  a.col = 1;
  a.end_column = 2;
  BOOST_TEST(ci::format_annotation("error", a, "Error: this is my error message") ==
             "::error title=A title,file=root/test.txt,line=5,endLine=5,col=1,endColumn=2::Error: this is my error message\n");
  BOOST_TEST(ci::format_annotation("error", {}, "x") == "::error::x\n");
}

BOOST_AUTO_TEST_CASE(runner_reader_follows_the_runner_cases) {
  for (auto& c : cases()["parse_stdout_command"]) {
    auto got = runner::parse_command(c["line"].get<std::string>());
    std::string id = c["id"];
    if (c["expect"].is_null()) {
      BOOST_TEST(!got.has_value(), id);
      continue;
    }
    BOOST_REQUIRE_MESSAGE(got.has_value(), id);
    BOOST_TEST(got->command == c["expect"]["command"].get<std::string>(), id);
    BOOST_TEST(got->data == c["expect"]["data"].get<std::string>(), id);
    BOOST_TEST(json(got->properties) == c["expect"]["properties"], id);
  }
  for (auto& c : cases()["parse_env_file"]) {
    std::string error, id = c["id"];
    auto got = runner::parse_file_commands(c["content"].get<std::string>(), &error);
    if (c.contains("expect_error_containing")) {
      BOOST_TEST(!got.has_value(), id);
      BOOST_TEST(error.find(c["expect_error_containing"].get<std::string>()) != std::string::npos, id << ": " << error);
    } else {
      BOOST_REQUIRE_MESSAGE(got.has_value(), id << ": " << error);
      BOOST_TEST(json(*got) == c["expect"], id);
    }
  }
}

BOOST_AUTO_TEST_CASE(file_commands_match_the_toolkit) {
  for (auto& c : cases()["emit_file_command"]) {
    if (!c.contains("name")) continue;  // GITHUB_PATH has no name
    std::string id = c["id"], delimiter = "ghadelimiter_" + c["uuid"].get<std::string>();
    auto got = ci::format_file_command(c["name"].get<std::string>(), toolkit_string(c["value"]), delimiter);
    if (c.contains("expect_error")) {
      BOOST_TEST(!got.ok(), id);
      if (!got.ok()) BOOST_TEST(got.message() == c["expect_error"].get<std::string>(), id);
    } else {
      BOOST_REQUIRE_MESSAGE(got.ok(), id);
      BOOST_TEST(*got == c["expect_append"].get<std::string>(), id);
    }
  }
}

BOOST_AUTO_TEST_CASE(output_file_reads_back_every_value) {
  hearth::testing::TempDir dir;
  std::string path = (dir.path / "output").string();
  std::vector<std::pair<std::string, std::string>> values = {
      {"plain", "value"},
      {"empty", ""},
      {"multi", "line one\n\nline three\n"},
      {"tricky", "a=b<<EOF\nEOF\nghadelimiter_00000000-0000-4000-8000-000000000000\n"},
      {"json", R"({"x": "y\nz", "k": [1, 2]})"},
  };
  BOOST_REQUIRE(ci::append_file_commands(path, values).ok());
  BOOST_REQUIRE(ci::append_file_commands(path, {{"later", "appended"}}).ok());
  std::string error;
  auto parsed = runner::parse_file_commands(read_file(path), &error);
  BOOST_REQUIRE_MESSAGE(parsed.has_value(), error);
  for (auto& [k, v] : values) BOOST_TEST(parsed->at(k) == v, k);
  BOOST_TEST(parsed->at("later") == "appended");
  // Every delimiter is fresh.
  BOOST_TEST(ci::random_delimiter() != ci::random_delimiter());
  BOOST_TEST(ci::random_delimiter().size() == std::string("ghadelimiter_").size() + 36);
}

BOOST_AUTO_TEST_CASE(masks_register_every_line_with_the_runner) {
  // A multi-line secret: the runner registers each line (and the whole).
  std::string out = ci::mask_commands({"abc\rdef\nghi\r\njkl"});
  auto cmds = runner::commands_in(out);
  BOOST_REQUIRE(!cmds.empty());
  BOOST_TEST(cmds[0].command == "add-mask");
  BOOST_TEST(cmds[0].data == "abc\rdef\nghi\r\njkl");
  BOOST_TEST(out.find("::add-mask::abc%0Ddef%0Aghi%0D%0Ajkl\n") == 0);
}

BOOST_AUTO_TEST_CASE(secret_forms_cover_encodings) {
  // The engine's list (commands/redact.h): the value first, then every encoding once.
  auto forms = ci::secret_forms("p@ss word/\"x\"");
  BOOST_TEST(forms == hearth::commands::encoded_forms("p@ss word/\"x\""));
  BOOST_TEST(forms[0] == "p@ss word/\"x\"");
  for (auto& f : {"cEBzcyB3b3JkLyJ4Ig==", "p%40ss%20word%2F%22x%22", "p@ss word/\\\"x\\\"", "7040737320776f72642f227822"})
    BOOST_TEST((std::find(forms.begin(), forms.end(), std::string(f)) != forms.end()), f);
  BOOST_TEST(ci::secret_forms("").empty());
  BOOST_TEST(ci::redact("token=p%40ss%20word%2F%22x%22 and cEBzcyB3b3JkLyJ4Ig==", {"p@ss word/\"x\""}) == "token=*** and ***");
  BOOST_TEST(ci::redact("a abc b", {"abc"}) == "a *** b");  // too short for the engine's list: as is
}

BOOST_AUTO_TEST_CASE(inputs_follow_the_toolkit) {
  auto& in = cases()["inputs"];
  auto env = lookup_in(in["env"]);
  int n = 0;
  for (auto& c : in["cases"]) {
    std::string fn = c["fn"], name = c["name"];
    bool trim = !(c.contains("options") && c["options"].value("trimWhitespace", true) == false);
    if (c.contains("options") && c["options"].value("required", false)) continue;  // not an option of ours
    if (fn == "getInput") {
      BOOST_TEST(ci::get_input(env, name, trim) == c["expect"].get<std::string>(), name);
      ++n;
    } else if (fn == "getBooleanInput") {
      auto got = ci::get_boolean_input(env, name);
      if (c.contains("expect_error")) {
        BOOST_TEST(!got.ok(), name);
        if (!got.ok()) BOOST_TEST(got.message() == c["expect_error"].get<std::string>());
      } else {
        BOOST_REQUIRE(got.ok());
        BOOST_TEST(got->value() == c["expect"].get<bool>(), name);
      }
      ++n;
    }
  }
  BOOST_TEST(n >= 13);
  BOOST_TEST(!ci::get_boolean_input(env, "missing")->has_value());  // empty: the caller's default
}

BOOST_AUTO_TEST_CASE(actions_env_reads_the_job) {
  json env = {{"GITHUB_ACTIONS", "true"}, {"GITHUB_EVENT_NAME", "issues"}, {"GITHUB_RUN_ID", "42"},
              {"GITHUB_RUN_ATTEMPT", "3"}, {"GITHUB_REPOSITORY", "o/r"}, {"GITHUB_JOB", "triage"}};
  auto a = ci::ActionsEnv::read(lookup_in(env));
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->actions);
  BOOST_TEST(a->run_attempt == 3);
  BOOST_TEST(a->event_name == "issues");
  env["GITHUB_RUN_ATTEMPT"] = "two";
  auto bad = ci::ActionsEnv::read(lookup_in(env));
  BOOST_TEST(!bad.ok());
  if (!bad.ok()) BOOST_TEST(bad.message().find("GITHUB_RUN_ATTEMPT") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(run_ids_are_stable_per_job_and_distinct_otherwise) {
  ci::ActionsEnv env;
  env.run_id = "9876543210";
  env.repository = "octo-org/octo-repo";
  env.job = "triage";
  env.run_attempt = 1;
  std::string first = ci::derive_run_id(env, "triage", false);
  env.run_attempt = 2;
  BOOST_TEST(ci::derive_run_id(env, "triage", false) == first);  // a re-run finds its run
  BOOST_TEST(ci::derive_run_id(env, "triage", true) != first);   // resume off: a new run
  BOOST_TEST(ci::derive_run_id(env, "review", false) != first);
  BOOST_TEST(ci::derive_run_id(env, "tri/age", false) != ci::derive_run_id(env, "tri_age", false));
  auto other = env;
  other.repository = "octo-org/other";
  BOOST_TEST(ci::derive_run_id(other, "triage", false) != first);
  std::string longest = ci::derive_run_id(env, std::string(300, 'w') + " ünïcode", false);
  BOOST_TEST(longest.size() <= 128u);
  for (char c : longest) BOOST_TEST((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'));
  env.run_id.clear();
  BOOST_TEST(ci::derive_run_id(env, "triage", false).empty());
}

BOOST_AUTO_TEST_CASE(workflow_dispatch_inputs_become_typed_inputs) {
  json event = json::parse(read_file(testdata_dir() / "github-webhooks" / "workflow_dispatch" / "payload.json"));
  event["inputs"]["count"] = "3";
  json schema = {{"type", "object"}, {"properties", {{"count", {{"type", "integer"}}}, {"name", {{"type", "string"}}}}}};
  auto p = ci::run_payload("workflow_dispatch", event, schema);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST((*p)["name"] == "Mona the Octocat");
  BOOST_TEST((*p)["count"] == 3);
  BOOST_TEST((*p)["repository"]["full_name"] == "octo-org/octo-repo");  // the event is still there
  event["inputs"]["count"] = "many";
  auto bad = ci::run_payload("workflow_dispatch", event, schema);
  BOOST_TEST(!bad.ok());
  if (!bad.ok()) BOOST_TEST(bad.message().find("count") != std::string::npos);
  // Other events: the payload as it is, even with an "inputs" member.
  auto push = ci::run_payload("push", event, schema);
  BOOST_TEST(!push->contains("count"));
}

BOOST_AUTO_TEST_CASE(summary_shows_steps_result_and_token_usage) {
  ci::RunReport r;
  r.run.id = "gh-1-job-triage-abcd1234";
  r.run.workflow = "tri|age";
  r.run.status = RunStatus::failed;
  r.run.created_at = 1000;
  r.run.finished_at = 3500;
  hearth::engine::StepRecord a;
  a.id = "label";
  a.status = StepStatus::succeeded;
  a.attempts = 2;
  a.started_at = 1000;
  a.finished_at = 2200;
  a.outputs = {{"labels", "bug"}};
  hearth::engine::StepRecord b;
  b.id = "reply";
  b.status = StepStatus::failed;
  b.attempts = 1;
  b.reason = "exited with code 1";
  r.steps = {a, b};
  r.events = {event(r.run.id, "step.succeeded", "label", {{"usage", {{"input_tokens", 1200}, {"output_tokens", 80}}}}),
              event(r.run.id, "step.retrying", "label", {{"usage", {{"input_tokens", 300}, {"output_tokens", 20}}}})};
  r.resumed = true;
  std::string md = ci::render_summary({r});
  BOOST_TEST(md.find("### ❌ tri\\|age: failed") != std::string::npos, md);
  BOOST_TEST(md.find("| `label` | ✅ succeeded | 2 | 1.2s | 1500 | 100 |") != std::string::npos, md);
  BOOST_TEST(md.find("| `reply` | ❌ failed (exited with code 1) | 1 |") != std::string::npos, md);
  BOOST_TEST(md.find("resumed from an earlier attempt") != std::string::npos);
  BOOST_TEST(md.find("\"labels\": \"bug\"") != std::string::npos);
  // Without usage, no token columns.
  r.events.clear();
  BOOST_TEST(ci::render_summary({r}).find("tokens") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(reporter_folds_concurrent_steps_and_fences_their_commands) {
  auto loaded = hearth::workflows::load_workflow_text(
      "[[steps]]\nid = \"a\"\nrun = \"true\"\n\n[[steps]]\nid = \"b\"\nrun = \"true\"\n", "/repo/.hearth/workflows/w.toml");
  BOOST_REQUIRE(loaded.ok());
  Captured cap;
  {
    ci::ActionsReporter rep(cap.f);
    rep.add_run("r", *loaded.workflow, ".hearth/workflows/w.toml");
    rep.on_event(event("r", "run.started", "", {{"workflow", "w"}}));
    rep.on_event(event("r", "step.started", "a", {{"attempt", 1}}));
    rep.on_event(event("r", "step.started", "b", {{"attempt", 1}}));
    rep.on_output("r", "a", "a1\n");
    rep.on_output("r", "b", "b1\n::error::forged\n");
    rep.on_output("r", "a", "a2");
    rep.on_event(event("r", "step.failed", "b", {{"attempt", 1}, {"message", "exited with code 2"}, {"duration_ms", 5}}));
    rep.on_event(event("r", "step.succeeded", "a", {{"attempt", 1}, {"duration_ms", 7}}));
    rep.on_event(event("r", "run.finished", "", {{"status", "failed"}, {"duration_ms", 9}}));
    rep.flush();
  }
  std::string out = cap.text();
  // a's group holds only a's output, b's only b's, in start order.
  size_t ga = out.find("::group::a\n"), gb = out.find("::group::b\n");
  BOOST_REQUIRE(ga != std::string::npos);
  BOOST_REQUIRE(gb != std::string::npos);
  BOOST_TEST(ga < gb);
  std::string a_part = out.substr(ga, gb - ga);
  BOOST_TEST(a_part.find("a1\na2\n") != std::string::npos, out);
  BOOST_TEST(a_part.find("\nb1\n") == std::string::npos, out);
  // The step's forged command is inside ::stop-commands::; ours is not.
  auto cmds = runner::commands_in(out);
  int errors = 0, groups = 0, ends = 0;
  for (auto& c : cmds) {
    if (c.command == "group") ++groups;
    if (c.command == "endgroup") ++ends;
    if (c.command != "error") continue;
    ++errors;
    BOOST_TEST(c.data == "exited with code 2");
    BOOST_TEST(c.properties["file"] == ".hearth/workflows/w.toml");
    BOOST_TEST(c.properties["line"] == "5");  // b's [[steps]] table
    BOOST_TEST(c.properties["title"] == "w: step 'b' failed");
  }
  BOOST_TEST(errors == 1, out);
  BOOST_TEST(groups == 2);
  BOOST_TEST(ends == 2);
}

BOOST_AUTO_TEST_CASE(command_tables_declare_secrets) {
  auto ok = hearth::workflows::load_workflow_text(R"toml(
[commands.gh]
secrets = ["GH_TOKEN", "GH_ENTERPRISE_TOKEN"]
allow = ["issue view *"]
timeout = "60s"

[commands.publish]
exec = "/usr/bin/npm"
secrets = "NPM_TOKEN"
allow = ["publish"]

[[steps]]
id = "a"
run = "true"
)toml", "w.toml");
  BOOST_REQUIRE_MESSAGE(ok.ok(), (ok.errors.empty() ? std::string() : ok.errors[0]));
  auto& cmds = ok.workflow->commands;
  BOOST_TEST(cmds.size() == 2u);
  BOOST_TEST(cmds.at("gh").exec == "gh");
  BOOST_TEST(cmds.at("gh").secrets == (std::vector<std::string>{"GH_TOKEN", "GH_ENTERPRISE_TOKEN"}));
  BOOST_TEST(cmds.at("publish").exec == "/usr/bin/npm");
  BOOST_TEST(cmds.at("publish").secrets == (std::vector<std::string>{"NPM_TOKEN"}));
  auto bad = hearth::workflows::load_workflow_text(
      "[commands.gh]\nsecret = [\"GH_TOKEN\"]\nsecrets = [\"GH TOKEN\", 3]\nallow = [\"x\"]\n[[steps]]\nid = \"a\"\nrun = \"true\"\n",
      "w.toml");
  BOOST_REQUIRE(bad.errors.size() == 3u);
  BOOST_TEST(bad.errors[0] == "w.toml:2:1: unknown key 'secret' in [commands.gh] (did you mean 'secrets'?)");
  BOOST_TEST(bad.errors[1].find("w.toml:3:11: 'GH TOKEN' in 'secrets' of [commands.gh] is not an environment variable name") == 0,
             bad.errors[1]);
  BOOST_TEST(bad.errors[2].find("must hold only strings") != std::string::npos, bad.errors[2]);
}

BOOST_AUTO_TEST_SUITE_END()
