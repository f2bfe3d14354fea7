// `hearth ci` end to end: the built binary, run as a GitHub Actions step
// would run it — GITHUB_* variables, an event file holding a real webhook
// payload from tests/data, files for outputs and the job summary —
// in a temporary repository with real workflows and a real state database.
// What it wrote is read back by the runner's rules (runner_rules.h).
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "tests/ci/mermaid_check.h"
#include "tests/ci/runner_rules.h"
#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "tests/support/model_server.h"
#include "tests/support/testdata.h"
#include "tests/support/workflow_toml.h"

extern char** environ;

using namespace hearth::testing;
namespace runner = hearth::testing::runner;

namespace {

struct Step {
  int exit_code = -1;
  std::string out, err;
  std::map<std::string, std::string> outputs;  // $GITHUB_OUTPUT as the runner reads it
  std::string summary;                         // $GITHUB_STEP_SUMMARY
  json result() const { return json::parse(outputs.at("result")); }
};

/// A repository with .hearth/workflows and a job environment around it.
class Job {
 public:
  Job() { fs::create_directories(dir_.path / "repo" / ".git"); }

  fs::path repo() const { return dir_.path / "repo"; }
  void workflow(const std::string& name, const std::string& toml) {
    write_file(repo() / ".hearth" / "workflows" / (name + ".toml"), toml);
  }

  /// Runs `hearth ci` for `event` with the payload at `payload` (relative to
  /// github-webhooks/), as attempt `attempt` of workflow run `run_id`.
  Step run(const std::string& event, const std::string& payload, int attempt = 1,
           std::map<std::string, std::string> extra = {}, const std::string& run_id = "7001") {
    pid_t pid = start(event, payload, attempt, std::move(extra), run_id);
    return finish(pid);
  }

  /// Starts `hearth ci` as run() does, without waiting for it.
  pid_t start(const std::string& event, const std::string& payload, int attempt = 1,
              std::map<std::string, std::string> extra = {}, const std::string& run_id = "7001") {
    out_ = dir_.path / ("output-" + std::to_string(++n_));
    summary_ = dir_.path / ("summary-" + std::to_string(n_));
    fs::path& out = out_;
    fs::path& summary = summary_;
    write_file(out, "");
    write_file(summary, "");
    std::map<std::string, std::string> env = {
        {"GITHUB_ACTIONS", "true"},
        {"CI", "true"},
        {"GITHUB_EVENT_NAME", event},
        {"GITHUB_EVENT_PATH", (testdata_dir() / "github-webhooks" / payload).string()},
        {"GITHUB_OUTPUT", out.string()},
        {"GITHUB_STEP_SUMMARY", summary.string()},
        {"GITHUB_RUN_ID", run_id},
        {"GITHUB_RUN_ATTEMPT", std::to_string(attempt)},
        {"GITHUB_REPOSITORY", "octo-org/octo-repo"},
        {"GITHUB_JOB", "hearth"},
        {"GITHUB_WORKSPACE", repo().string()},
        {"RUNNER_TEMP", dir_.str()},
        {"INPUT_STATE-PATH", (dir_.path / "state").string()},
    };
    for (auto& [k, v] : extra) env[k] = v;
    return spawn(env);
  }

  /// Waits for `pid` (from start) and reads what it wrote.
  Step finish(pid_t pid) {
    BOOST_REQUIRE(running_ && running_->pid() == pid);
    auto status = running_->wait_status(std::chrono::seconds(30));
    if (!status) running_->kill_and_reap();
    running_.reset();
    Step s;
    s.out = read_file(stdout_);
    s.err = read_file(stderr_);
    BOOST_REQUIRE_MESSAGE(status, "hearth ci did not exit within 30 s\n" + s.out + s.err);
    s.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -WTERMSIG(*status);
    std::string error;
    auto parsed = runner::parse_file_commands(read_file(out_), &error);
    BOOST_REQUIRE_MESSAGE(parsed.has_value(), "GITHUB_OUTPUT unreadable by the runner's rules: " + error);
    s.outputs = *parsed;
    s.summary = read_file(summary_);
    return s;
  }

 private:
  // The binary with exactly this environment (plus PATH), cwd the repository.
  pid_t spawn(const std::map<std::string, std::string>& env) {
    stdout_ = dir_.path / ("stdout-" + std::to_string(n_));
    stderr_ = dir_.path / ("stderr-" + std::to_string(n_));
    running_ = std::make_unique<HearthProcess>(Invocation{{"ci"}, env, repo()},
                                               Launch{{}, stdout_, stderr_, /*only_env=*/true, /*own_group=*/false});
    return running_->pid();
  }

  std::unique_ptr<HearthProcess> running_;
  fs::path stdout_, stderr_;  // what the latest start() printed
  TempDir dir_;
  int n_ = 0;
  fs::path out_, summary_;  // the files of the latest start()
};

// A workflow that starts on `triggers` and records that it ran.
std::string marker_workflow(const std::string& name, const std::string& triggers, const std::string& extra = "") {
  return "name = \"" + name + "\"\n[on]\ngithub = [" + triggers + "]\n\n[[steps]]\nid = \"mark\"\nrun = 'touch ran-" +
         name + "'\n" + extra;
}

std::vector<std::string> ran(const Step& s) {
  std::vector<std::string> names;
  if (!s.outputs.count("result")) return names;
  json result = s.result();
  for (auto& [k, v] : result.items()) names.push_back(k);
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(actions_ci)

BOOST_AUTO_TEST_CASE(each_real_event_starts_the_workflows_that_declare_it) {
  Job job;
  job.workflow("triage", marker_workflow("triage", "\"issues.opened\"",
      "[[steps]]\nid = \"number\"\nrun = 'echo \"n=${{ inputs.issue.number }}\" >> \"$HEARTH_OUTPUT\"'\n"));
  job.workflow("closed", marker_workflow("closed", "\"issues.closed\""));
  job.workflow("any-issue", marker_workflow("any-issue", "\"issues\""));
  job.workflow("comment", marker_workflow("comment", "\"issue_comment.created\""));
  job.workflow("review", marker_workflow("review", "\"pull_request\""));
  job.workflow("sync", marker_workflow("sync", "\"pull_request.synchronize\""));
  job.workflow("pushed", marker_workflow("pushed", "\"push\"",
      "[[steps]]\nid = \"ref\"\nrun = 'echo \"ref=${{ inputs.ref }}\" >> \"$HEARTH_OUTPUT\"'\n"));
  job.workflow("manual", marker_workflow("manual", "\"workflow_dispatch\"",
      "[inputs]\nname = { type = \"string\", required = true }\n"
      "[[steps]]\nid = \"greet\"\nrun = 'echo \"hello=${{ inputs.name }}\" >> \"$HEARTH_OUTPUT\"'\n"));
  job.workflow("nothing", "[[steps]]\nid = \"x\"\nrun = 'touch ran-nothing'\n");  // no [on]: never by event

  struct Case {
    std::string event, payload;
    std::vector<std::string> expect;
  };
  std::vector<Case> cases = {
      {"issues", "issues/opened.payload.json", {"any-issue", "triage"}},
      {"issue_comment", "issue_comment/created.payload.json", {"comment"}},
      {"pull_request", "pull_request/opened.payload.json", {"review"}},
      {"pull_request", "pull_request/synchronize.payload.json", {"review", "sync"}},
      {"push", "push/payload.json", {"pushed"}},
      {"workflow_dispatch", "workflow_dispatch/payload.json", {"manual"}},
  };
  int run_id = 100;
  for (auto& c : cases) {
    Step s = job.run(c.event, c.payload, 1, {}, std::to_string(++run_id));
    BOOST_TEST(s.exit_code == 0, c.payload << "\n" << s.out << s.err);
    BOOST_TEST(ran(s) == c.expect, c.payload);
    BOOST_TEST(s.outputs.at("status") == "succeeded", c.payload);
    for (auto& name : c.expect) BOOST_TEST(fs::exists(job.repo() / ("ran-" + name)), name);
    for (auto& name : c.expect) fs::remove(job.repo() / ("ran-" + name));
  }
  BOOST_TEST(!fs::exists(job.repo() / "ran-closed"));
  BOOST_TEST(!fs::exists(job.repo() / "ran-nothing"));

  // The payload reached the runs: issue number, push ref, dispatch input.
  json issue = json::parse(read_file(testdata_dir() / "github-webhooks/issues/opened.payload.json"));
  Step s = job.run("issues", "issues/opened.payload.json", 1, {}, "200");
  BOOST_TEST(s.result()["triage"]["steps"]["number"]["outputs"]["n"] == std::to_string(issue["issue"]["number"].get<int>()));
  json push = json::parse(read_file(testdata_dir() / "github-webhooks/push/payload.json"));
  s = job.run("push", "push/payload.json", 1, {}, "201");
  BOOST_TEST(s.result()["pushed"]["steps"]["ref"]["outputs"]["ref"] == push["ref"]);
  s = job.run("workflow_dispatch", "workflow_dispatch/payload.json", 1, {}, "202");
  BOOST_TEST(s.result()["manual"]["steps"]["greet"]["outputs"]["hello"] == "Mona the Octocat");
  // run-id names every run, space-separated; each one is in the result.
  s = job.run("pull_request", "pull_request/synchronize.payload.json", 1, {}, "203");
  std::string ids = s.outputs.at("run-id");
  BOOST_TEST(ids.find(' ') != std::string::npos);
  BOOST_TEST(ids.find(s.result()["review"]["run_id"].get<std::string>()) != std::string::npos);
  BOOST_TEST(ids.find(s.result()["sync"]["run_id"].get<std::string>()) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_matching_workflow_says_so_and_succeeds) {
  Job job;
  job.workflow("review", marker_workflow("review", "\"pull_request\""));
  Step s = job.run("issues", "issues/opened.with-empty-body.payload.json");
  BOOST_TEST(s.exit_code == 0, s.out << s.err);
  BOOST_TEST(s.out.find("no workflow in .hearth/workflows starts on issues.opened") != std::string::npos, s.out);
  BOOST_TEST(s.outputs.at("status") == "skipped");
  BOOST_TEST(s.outputs.at("run-id") == "");
  BOOST_TEST(s.summary.find("no workflow starts on `issues.opened`") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(outputs_and_summary_carry_multiline_results) {
  Job job;
  job.workflow("notes", workflow_toml(
      {
          {.id = "write",
           .run = R"(printf 'body<<EOF\nline one\n\nline | three\nEOF\n' >> "$HEARTH_OUTPUT"
echo "sha=${{ inputs.after }}" >> "$HEARTH_OUTPUT"
)"},
          {.id = "fail", .needs = {"write"}, .run = R"(echo "about to fail"; exit 4)", .more = "continue-on-error = true"},
      },
      github_head("notes", {"push"})));
  Step s = job.run("push", "push/payload.json");
  BOOST_TEST(s.exit_code == 0, s.out << s.err);
  json r = s.result()["notes"];
  BOOST_TEST(r["steps"]["write"]["outputs"]["body"] == "line one\n\nline | three");
  BOOST_TEST(r["run_id"] == s.outputs.at("run-id"));
  BOOST_TEST(r["steps"]["fail"]["status"] == "failed");
  // The summary: a heading per run, a row per step, the result.
  BOOST_TEST(s.summary.find("### ✅ notes: succeeded") != std::string::npos, s.summary);
  BOOST_TEST(s.summary.find("| `write` | ✅ succeeded | 1 |") != std::string::npos, s.summary);
  BOOST_TEST(s.summary.find("| `fail` | ❌ failed (exited with code 4) | 1 |") != std::string::npos, s.summary);
  BOOST_TEST(s.summary.find("\"body\": \"line one\\n\\nline | three\"") != std::string::npos, s.summary);
  // The log: each step folded in a group.
  auto cmds = runner::commands_in(s.out);
  std::vector<std::string> groups;
  for (auto& c : cmds)
    if (c.command == "group") groups.push_back(c.data);
  BOOST_TEST(groups == (std::vector<std::string>{"write", "fail"}));
}

BOOST_AUTO_TEST_CASE(the_result_carries_the_validated_result_of_a_prompt_step) {
  ModelServer model;
  Job job;
  job.workflow("triage", R"toml(name = "triage"
[on]
github = ["issues.opened"]

[sandbox]
kind = "local"

[model]
name = "anthropic/claude-stand-in"

[[steps]]
id = "classify"
prompt = "Classify the issue."
result-retries = 1

[steps.result]
type = "object"
required = ["severity", "labels"]
[steps.result.properties.severity]
enum = ["low", "medium", "high"]
[steps.result.properties.labels]
type = "array"
items = { type = "string" }

[[steps]]
id = "echo"
needs = ["classify"]
run = 'echo "${{ steps.classify.result.severity }}"'
)toml");
  // The first answer breaks the schema and is sent back; the second passes.
  model.push(Reply::call("c1", "submit_result", R"({"severity": "urgent", "labels": ["bug"]})"));
  model.push(Reply::call("c2", "submit_result", R"({"severity": "high", "labels": ["bug", "crash"]})"));
  Step s = job.run("issues", "issues/opened.payload.json", 1,
                   {{"ANTHROPIC_BASE_URL", model.url()}, {"ANTHROPIC_API_KEY", "test-key-0000"}});
  BOOST_TEST(s.exit_code == 0, s.out << s.err);
  // What `fromJSON(steps.hearth.outputs.result).triage.steps.classify.result.severity` reads.
  json steps = s.result()["triage"]["steps"];
  BOOST_TEST(steps["classify"]["result"] == json({{"severity", "high"}, {"labels", {"bug", "crash"}}}), steps.dump());
  BOOST_TEST(steps["classify"]["status"] == "succeeded");
  BOOST_TEST(!steps["echo"].contains("result"), "a run step has outputs, no result: " << steps["echo"].dump());
  BOOST_TEST(s.result().dump().find("urgent") == std::string::npos, "the rejected answer is not the result");
  BOOST_TEST(s.summary.find("\"severity\": \"high\"") != std::string::npos, s.summary);
}

BOOST_AUTO_TEST_CASE(the_summary_draws_the_steps_and_when_they_ran) {
  Job job;
  // A step name a pull request could write, trying to leave the diagram.
  job.workflow("build", workflow_toml(
      {
          {.id = "fetch", .run = "true", .more = R"(name = "Fetch\"]\n```\n<img src=x onerror=alert(1)> %%{init: {}}%%")"},
          {.id = "compile", .needs = {"fetch"}, .run = "exit 3"},
          {.id = "lint", .needs = {"fetch"}, .run = "true"},
          {.id = "publish", .needs = {"compile", "lint"}, .run = "true"},
      },
      github_head("build", {"push"})));
  Step s = job.run("push", "push/payload.json");
  BOOST_TEST(s.exit_code == 1, s.out << s.err);
  auto d = hearth::testing::mermaid::read(s.summary);
  BOOST_TEST(d.errors.empty(), s.summary);
  BOOST_REQUIRE_EQUAL(d.flowcharts.size(), 1u);
  auto& f = d.flowcharts[0];
  BOOST_TEST(f.label["s0"] == "Fetch\"]\n```\n<img src=x onerror=alert(1)> %%{init: {}}%% - succeeded");
  BOOST_TEST(f.label["s1"] == "compile - failed");
  BOOST_TEST(f.label["s3"] == "publish - skipped");
  BOOST_TEST(f.cls["s1"] == "failed");
  BOOST_TEST(f.cls["s3"] == "skipped");
  std::set<std::pair<std::string, std::string>> edges = {{"s0", "s1"}, {"s0", "s2"}, {"s1", "s3"}, {"s2", "s3"}};
  BOOST_TEST((f.edges == edges));
  BOOST_TEST(s.summary.find("<img") == std::string::npos, s.summary);
  // The three steps that ran, each inside the run's time.
  BOOST_REQUIRE_EQUAL(d.gantts.size(), 1u);
  BOOST_REQUIRE_EQUAL(d.gantts[0].size(), 3u);
  BOOST_TEST(d.gantts[0][1].tag == "crit");
  for (auto& t : d.gantts[0]) BOOST_TEST(t.start >= d.gantts[0][0].start);
}

// The fenced block that follows the first line of `doc` holding `marker` (or
// whose first line is `marker`).
std::string doc_block(const std::string& doc, const std::string& marker) {
  size_t at = doc.find(marker);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, "docs/github-actions.md has no " << marker);
  size_t line = doc.rfind('\n', at) + 1;
  size_t previous = doc.rfind('\n', line - 2) + 1;
  size_t body = doc.compare(previous, 3, "```") == 0 ? line : doc.find('\n', doc.find("\n```", at) + 1) + 1;
  size_t close = doc.find("\n```\n", body);
  return doc.substr(body, close - body + 1);
}

BOOST_AUTO_TEST_CASE(the_docs_opening_example_runs_as_written) {
  if (auto why = hearth::sandbox::namespace_support_problem(); !why.empty()) {
    BOOST_TEST_MESSAGE("skipped: " << why);
    return;
  }
  const char* root = std::getenv("HEARTH_SOURCE_ROOT");
  BOOST_REQUIRE(root);
  std::string doc = read_file(fs::path(root) / "docs" / "github-actions.md");
  std::string actions_yaml = doc_block(doc, "# .github/workflows/triage.yml");
  Job job;
  write_file(job.repo() / ".hearth" / "workflows" / "triage.toml", doc_block(doc, "# .hearth/workflows/triage.toml"));
  write_file(job.repo() / ".hearth" / "skills" / "triage" / "SKILL.md", doc_block(doc, "`.hearth/skills/triage/SKILL.md`:"));
  write_file(job.repo() / "README.md", "# octo-repo\n");
  // gh, as the granted command finds it on the host (it runs jailed, as the run's own id): says what it was asked.
  TempDir bin;
  write_file(bin.path / "gh", "#!/bin/sh\necho \"fake-gh: $*\"\n");
  for (auto& p : {bin.path, bin.path / "gh"})
    fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                           fs::perms::others_exec);
  ModelServer model;
  model.push(Reply::call("r1", "submit_result", R"({"severity": "critical", "labels": ["bug"], "summary": "Crash on start."})"));
  Step s = job.run("issues", "issues/opened.payload.json", 1,
                   {{"ANTHROPIC_BASE_URL", model.url()}, {"ANTHROPIC_API_KEY", "test-key-0000"},
                    {"GH_TOKEN", "ghs_example"}, {"PATH", bin.str() + ":/usr/bin:/bin"}});
  BOOST_TEST(s.exit_code == 0, s.out << s.err);
  json payload = json::parse(read_file(testdata_dir() / "github-webhooks" / "issues" / "opened.payload.json"));
  std::string call = "fake-gh: issue edit " + std::to_string(payload["issue"]["number"].get<int64_t>()) + " --add-label bug\n";
  BOOST_TEST(s.out.find(call) != std::string::npos, s.out);
  // The Actions workflow's later step reads the severity by the path it writes.
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(actions_yaml, m, std::regex(R"re(fromJSON\(steps\.hearth\.outputs\.result\)\.([a-z.]+) == 'critical')re")));
  json value = s.result();
  for (auto& key : {std::string(m[1])} ) {
    std::stringstream path(key);
    std::string part;
    while (std::getline(path, part, '.')) value = value.at(part);
  }
  BOOST_TEST(value == "critical", "the docs' path " << m[1] << " reads " << value.dump());
}

BOOST_AUTO_TEST_CASE(secrets_are_masked_before_anything_is_printed) {
  Job job;
  const std::string token = "ghs_s3cr3t/token+value";
  job.workflow("triage", R"toml(name = "triage"
[on]
github = ["issues.opened"]

[commands.gh]
exec = "gh"
secrets = ["GH_TOKEN", "UNSET_SECRET", "EMPTY_SECRET"]
allow = ["issue view *"]

[[steps]]
id = "leak"
run = '''
echo "the token is $GH_TOKEN"
echo "token=$GH_TOKEN" >> "$HEARTH_OUTPUT"
'''
)toml");
  // A broken workflow file is reported too, but only after the masks.
  job.workflow("broken", "[[steps]]\nid = \"x\"\nrun = 'true'\nneeds = [\"nope\"]\n");
  Step s = job.run("issues", "issues/opened.payload.json", 1, {{"GH_TOKEN", token}, {"EMPTY_SECRET", ""}});
  std::vector<std::string> masks;
  size_t first_other = std::string::npos;
  size_t at = 0;
  while (at < s.out.size()) {
    size_t nl = s.out.find('\n', at);
    std::string line = s.out.substr(at, nl - at);
    auto c = runner::parse_command(line);
    if (c && c->command == "add-mask") {
      BOOST_TEST(first_other == std::string::npos, "a mask came after other output: " << line);
      masks.push_back(c->data);
    } else if (first_other == std::string::npos) {
      first_other = at;
    }
    at = nl + 1;
  }
  // The value first, then its encoded forms (the redactor's list: base64,
  // URL, hex, base64 of base64, ...); nothing for unset or empty ones.
  BOOST_REQUIRE(!masks.empty());
  BOOST_TEST(masks.front() == token);
  auto has = [&](const std::string& m) { return std::find(masks.begin(), masks.end(), m) != masks.end(); };
  BOOST_TEST(has("Z2hzX3MzY3IzdC90b2tlbit2YWx1ZQ=="), s.out);
  BOOST_TEST(has("ghs_s3cr3t%2Ftoken%2Bvalue"), s.out);
  BOOST_TEST(has("6768735f7333637233742f746f6b656e2b76616c7565"), s.out);
  for (auto& m : masks) BOOST_TEST(!m.empty());  // the empty secret is skipped
  BOOST_TEST(s.out.find(token) < first_other);  // the only clear copies are the masks themselves
  // What hearth writes itself is redacted before GitHub ever sees it.
  BOOST_TEST(s.summary.find(token) == std::string::npos);
  BOOST_TEST(s.outputs.at("result").find(token) == std::string::npos);
  // Steps run in the namespace sandbox with a minimal environment: the secret
  // never reaches the step at all (only the granted command's broker sees it).
  BOOST_TEST(s.result()["triage"]["steps"]["leak"]["outputs"]["token"] == "");
  BOOST_TEST(s.exit_code == 2);  // the broken workflow fails the step
}

BOOST_AUTO_TEST_CASE(workflow_file_errors_are_annotated_on_their_line) {
  Job job;
  job.workflow("good", marker_workflow("good", "\"push\""));
  job.workflow("bad", "name = \"bad\"\n[on]\ngithub = [\"push\"]\n\n[[steps]]\nid = \"a\"\nrun = 'true'\ntimeout = \"soon\"\n");
  Step s = job.run("push", "push/payload.json");
  BOOST_TEST(s.exit_code == 2, s.out << s.err);
  BOOST_TEST(fs::exists(job.repo() / "ran-good"));  // the valid workflow still ran
  int errors = 0;
  for (auto& c : runner::commands_in(s.out)) {
    if (c.command != "error") continue;
    ++errors;
    BOOST_TEST(c.properties["file"] == ".hearth/workflows/bad.toml");
    BOOST_TEST(c.properties["line"] == "8");
    BOOST_TEST(c.properties["col"] == "11");
    BOOST_TEST(c.data.find("'timeout' of step 'a'") != std::string::npos, c.data);
  }
  BOOST_TEST(errors == 1, s.out);
  // A failing step is annotated on its [[steps]] table.
  Job job2;
  job2.workflow("f", "name = \"f\"\n[on]\ngithub = [\"push\"]\n\n[[steps]]\nid = \"ok\"\nrun = 'true'\n\n[[steps]]\nid = \"boom\"\nrun = 'exit 9'\n");
  s = job2.run("push", "push/payload.json");
  BOOST_TEST(s.exit_code == 1);
  BOOST_TEST(s.outputs.at("status") == "failed");
  bool found = false;
  for (auto& c : runner::commands_in(s.out)) {
    if (c.command != "error") continue;
    found = true;
    BOOST_TEST(c.properties["file"] == ".hearth/workflows/f.toml");
    BOOST_TEST(c.properties["line"] == "9");
    BOOST_TEST(c.data == "exited with code 9");
  }
  BOOST_TEST(found, s.out);
}

BOOST_AUTO_TEST_CASE(a_rerun_attempt_resumes_the_unfinished_run) {
  Job job;
  job.workflow("review", workflow_toml(
      {
          {.id = "expensive", .run = R"sh(echo once >> expensive.log; echo "n=$(wc -l < expensive.log)" >> "$HEARTH_OUTPUT")sh"},
          {.id = "flaky", .needs = {"expensive"}, .run = R"(test -f fixed || { echo "not fixed yet"; exit 1; })"},
      },
      github_head("review", {"pull_request.opened"})));
  Step first = job.run("pull_request", "pull_request/opened.payload.json", 1);
  BOOST_TEST(first.exit_code == 1, first.out << first.err);
  BOOST_TEST(first.outputs.at("status") == "failed");
  std::string id = first.outputs.at("run-id");
  BOOST_TEST(!id.empty());

  write_file(job.repo() / "fixed", "");
  Step second = job.run("pull_request", "pull_request/opened.payload.json", 2);
  BOOST_TEST(second.exit_code == 0, second.out << second.err);
  BOOST_TEST(second.outputs.at("run-id") == id);  // the same run, continued
  BOOST_TEST(second.outputs.at("status") == "succeeded");
  BOOST_TEST(read_file(job.repo() / "expensive.log") == "once\n");  // not paid for again
  BOOST_TEST(second.result()["review"]["steps"]["expensive"]["outputs"]["n"] == "1");
  BOOST_TEST(second.summary.find("resumed from an earlier attempt") != std::string::npos, second.summary);

  // A third attempt finds it done and runs nothing.
  Step third = job.run("pull_request", "pull_request/opened.payload.json", 3);
  BOOST_TEST(third.exit_code == 0);
  BOOST_TEST(third.outputs.at("run-id") == id);
  BOOST_TEST(third.out.find("already succeeded") != std::string::npos, third.out);
  BOOST_TEST(read_file(job.repo() / "expensive.log") == "once\n");

  // resume: false starts every attempt over, under a new id.
  Step fresh = job.run("pull_request", "pull_request/opened.payload.json", 4, {{"INPUT_RESUME", "false"}});
  BOOST_TEST(fresh.exit_code == 0, fresh.out << fresh.err);
  BOOST_TEST(fresh.outputs.at("run-id") != id);
  BOOST_TEST(read_file(job.repo() / "expensive.log") == "once\nonce\n");
}

BOOST_AUTO_TEST_CASE(a_rerun_after_the_job_was_killed_resumes_mid_run) {
  Job job;
  job.workflow("review", workflow_toml(
      {
          {.id = "first", .run = "echo once >> first.log"},
          {.id = "slow", .needs = {"first"}, .run = "echo attempt >> slow.log; test -f go || { touch started; sleep 60; }"},
      },
      github_head("review", {"pull_request"})));
  // Attempt 1: the runner dies (SIGKILL) while "slow" runs.
  pid_t pid = job.start("pull_request", "pull_request/opened.payload.json", 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(job.repo() / "started") && std::chrono::steady_clock::now() < deadline) usleep(10 * 1000);
  BOOST_REQUIRE_MESSAGE(fs::exists(job.repo() / "started"), "the slow step never started");
  kill(pid, SIGKILL);
  job.finish(pid);

  // Attempt 2 continues: "first" is kept, "slow" runs again and finishes.
  write_file(job.repo() / "go", "");
  Step second = job.run("pull_request", "pull_request/opened.payload.json", 2);
  BOOST_TEST(second.exit_code == 0, second.out << second.err);
  BOOST_TEST(second.outputs.at("status") == "succeeded");
  BOOST_TEST(read_file(job.repo() / "first.log") == "once\n");
  BOOST_TEST(read_file(job.repo() / "slow.log") == "attempt\nattempt\n");
  BOOST_TEST(second.out.find("was interrupted") != std::string::npos, second.out);
}

BOOST_AUTO_TEST_CASE(the_workflow_input_picks_by_name_or_glob) {
  Job job;
  job.workflow("triage-bugs", marker_workflow("triage-bugs", "\"issues.closed\""));
  job.workflow("triage-docs", marker_workflow("triage-docs", "\"issues.closed\""));
  job.workflow("other", marker_workflow("other", "\"issues.opened\""));
  // A glob runs what it names, whatever the event.
  Step s = job.run("issues", "issues/opened.payload.json", 1, {{"INPUT_WORKFLOW", "triage-*"}}, "301");
  BOOST_TEST(s.exit_code == 0, s.out << s.err);
  BOOST_TEST(ran(s) == (std::vector<std::string>{"triage-bugs", "triage-docs"}));
  BOOST_TEST(!fs::exists(job.repo() / "ran-other"));
  // An unknown name is an error that says what exists.
  s = job.run("issues", "issues/opened.payload.json", 1, {{"INPUT_WORKFLOW", "triage-bug"}}, "302");
  BOOST_TEST(s.exit_code == 2);
  BOOST_TEST(s.out.find("no workflow named 'triage-bug'") != std::string::npos, s.out);
  BOOST_TEST(s.out.find("did you mean") != std::string::npos, s.out);
  // A bad resume input is refused with the toolkit's message.
  s = job.run("issues", "issues/opened.payload.json", 1, {{"INPUT_RESUME", "yes"}}, "303");
  BOOST_TEST(s.exit_code == 2);
  BOOST_TEST(s.err.find("YAML 1.2") != std::string::npos, s.err);
}

BOOST_AUTO_TEST_SUITE_END()
