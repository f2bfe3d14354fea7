// Skill and prompt steps through the real engine: the agent's model is the
// stand-in server on 127.0.0.1 (tests/support/model_server.h), its bash calls run in
// the namespace sandbox with granted commands, its result is validated and
// stored, and a crash between turns resumes the conversation where the last
// checkpoint left it.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include "engine/fixture.h"
#include "tests/support/model_server.h"
#include "tests/support/workflow_toml.h"

namespace {

using namespace hearth::testing;

const std::string kToken = "tok_agent-S3cr3t-4b1d77";

// The events of one type, in order.
std::vector<nlohmann::json> events_of(const hearth::testing::RunResult& r, const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : r.events)
    if (e.type == type) out.push_back(e.data);
  return out;
}

// The messages of the n-th request the server received.
nlohmann::json messages_of(const ModelServer& server, size_t n) {
  auto requests = server.requests();
  BOOST_REQUIRE(n < requests.size());
  return requests[n].json()["messages"];
}

std::string triage_workflow(const std::string& kind) {
  return R"([sandbox]
kind = ")" + kind + R"("
workspace = "repo"

[model]
name = "anthropic/claude-stand-in"

[commands.tool]
exec = ")" + std::string("TOOL") + R"("
secrets = ["AGENT_TOOL_TOKEN"]
allow = ["hello *"]

[[steps]]
id = "triage"
skill = "triage"
with = { issue = "${{ inputs.issue }}" }
commands = ["tool"]
result-retries = 1

[steps.result]
type = "object"
required = ["severity", "labels", "summary"]
additionalProperties = false
[steps.result.properties.severity]
enum = ["low", "medium", "high"]
[steps.result.properties.labels]
type = "array"
items = { type = "string" }
[steps.result.properties.summary]
type = "string"

[[steps]]
id = "report"
needs = ["triage"]
run = 'echo "severity=${{ steps.triage.result.severity }} first=${{ steps.triage.result.labels[0] }}"'
)";
}

struct AgentEnv {
  ModelServer server;
  ScopedEnv env{{"ANTHROPIC_BASE_URL", server.url()}, {"ANTHROPIC_API_KEY", "test-key-0000"},
                {"AGENT_TOOL_TOKEN", kToken}};
};

void write_skill(TempRepo& repo) {
  repo.write(".hearth/skills/triage/SKILL.md", R"(---
name: triage
description: Classify an issue by severity and label it.
---
Read notes.txt, run `tool hello <issue>`, then submit the result.
)");
  repo.write("notes.txt", "The build is red since Tuesday.\n");
}

std::string host_tool(const TempRepo& repo) {
  auto path = repo.root() / "host-bin" / "tool";
  write_file(path, "#!/bin/bash\necho \"args:$*\"\necho \"token:$AGENT_TOOL_TOKEN\" >/dev/null\necho done\n");
  ::chmod(path.c_str(), 0755);
  return path.string();
}

std::string with_tool(std::string wf, const std::string& tool) {
  wf.replace(wf.find("TOOL"), 4, tool);
  return wf;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(skill_steps)

BOOST_AUTO_TEST_CASE(a_skill_reads_files_runs_a_granted_command_is_told_why_its_result_is_wrong_and_fixes_it) {
  if (without_namespaces()) return;
  AgentEnv a;
  TempRepo repo("");
  repo.rewrite(with_tool(triage_workflow("namespace"), host_tool(repo)));
  write_skill(repo);
  a.server.push(Reply::call("c1", "read", R"({"path": "notes.txt"})", "Reading the notes."));
  a.server.push(Reply::call("h1", "read", R"({"path": ".hearth/state.db"})"));
  a.server.push(Reply::call("h2", "grep", R"({"pattern": "triage", "path": "."})"));
  a.server.push(Reply::call("c2", "bash", R"({"command": "tool hello 42; tool auth token; echo \"env:${AGENT_TOOL_TOKEN:-none}\""})"));
  a.server.push(Reply::call("c3", "submit_result", R"({"severity": "urgent", "labels": ["ci"], "summary": "Red build."})"));
  a.server.push(Reply::call("c4", "submit_result", R"({"severity": "high", "labels": ["ci", "build"], "summary": "Red build."})"));

  auto r = repo.run({{"issue", "42"}});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, r.outcome.error << " / " << r.step("triage").reason);
  BOOST_TEST(r.step("triage").result["severity"] == "high");
  BOOST_TEST(r.step("triage").result["labels"] == nlohmann::json({"ci", "build"}));
  // A later step reads the result through an expression.
  BOOST_TEST(r.output("report").find("severity=high first=ci") != std::string::npos, r.output("report"));

  BOOST_REQUIRE_EQUAL(a.server.request_count(), 6u);
  // The engine's state directory (<repo>/.hearth) is out of the file tools' reach.
  std::string after_hidden_read = messages_of(a.server, 2).back().dump();
  BOOST_TEST(after_hidden_read.find("ermission denied") != std::string::npos, after_hidden_read);
  std::string after_grep = messages_of(a.server, 3).back().dump();
  BOOST_TEST(after_grep.find(".hearth/") == std::string::npos, after_grep);
  BOOST_TEST(after_grep.find("notes.txt") == std::string::npos);
  // The system prompt carries the skill's body and the step's arguments.
  auto first = a.server.requests()[0].json();
  BOOST_TEST(first["system"].dump().find("run `tool hello <issue>`") != std::string::npos);
  BOOST_TEST(first["system"].dump().find("\\\"issue\\\": \\\"42\\\"") != std::string::npos, first["system"].dump());
  // The read tool saw the workspace; bash ran the granted command on the
  // host, and neither the refused call nor the sandbox's environment gave
  // the secret away.
  std::string after_read = messages_of(a.server, 1).back().dump();
  BOOST_TEST(after_read.find("The build is red since Tuesday.") != std::string::npos, after_read);
  std::string after_bash = messages_of(a.server, 4).back().dump();
  BOOST_TEST(after_bash.find("args:hello 42") != std::string::npos, after_bash);
  BOOST_TEST(after_bash.find("env:none") != std::string::npos, after_bash);
  BOOST_TEST(after_bash.find("not granted") != std::string::npos, after_bash);
  // The first result was rejected with the pointer and the reason.
  std::string after_reject = messages_of(a.server, 5).back().dump();
  BOOST_TEST(after_reject.find("/severity") != std::string::npos, after_reject);
  auto rejections = events_of(r, "agent.result_rejected");
  BOOST_REQUIRE_EQUAL(rejections.size(), 1u);
  BOOST_TEST(rejections[0]["errors"].dump().find("/severity") != std::string::npos);
  BOOST_TEST(events_of(r, "agent.turn").size() == 6u);
  auto calls = events_of(r, "agent.tool_call");
  BOOST_REQUIRE_EQUAL(calls.size(), 6u);
  BOOST_TEST(calls[3]["tool"] == "bash");
  BOOST_TEST(events_of(r, "command.started").size() == 2u);  // the granted call and the refused one
  auto done = events_of(r, "step.succeeded");
  BOOST_TEST(done.front()["result"]["severity"] == "high");
  repo.expect_secret_absent(r, kToken);
  for (auto& req : a.server.requests()) BOOST_TEST(req.body.find(kToken) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_bash_calls_of_an_attempt_share_one_sandbox_and_it_is_gone_after) {
  if (without_namespaces()) return;
  AgentEnv a;
  TempRepo repo("");
  repo.rewrite(with_tool(R"([sandbox]
kind = "namespace"
workspace = "repo"

[model]
name = "anthropic/claude-stand-in"

[commands.tool]
exec = "TOOL"
allow = ["hello *"]

[[steps]]
id = "work"
prompt = "Build something in /tmp, then use it."
commands = ["tool"]
)", host_tool(repo)));
  a.server.push(Reply::call("c1", "bash", R"({"command": "echo kept > /tmp/note; mkdir -p sub; cd sub"})"));
  a.server.push(Reply::call("c2", "bash", R"({"command": "cat /tmp/note; pwd; tool hello 7"})"));
  a.server.push(Reply::say("Done."));
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, r.outcome.error << " / " << r.step("work").reason);
  BOOST_REQUIRE_EQUAL(a.server.request_count(), 3u);
  std::string second = messages_of(a.server, 2).back().dump();
  BOOST_TEST(second.find("kept\\n/workspace/sub\\nargs:hello 7") != std::string::npos, second);
  // The attempt's sandbox ended with it.
  BOOST_TEST(hearth::testing::child_named("hearth-stepbox") == 0);
}

BOOST_AUTO_TEST_CASE(results_rejected_past_result_retries_fail_the_attempt_and_the_retry_policy_applies) {
  AgentEnv a;
  TempRepo repo(local_agent_head() + R"([[steps]]
id = "classify"
prompt = "Classify ${{ inputs.word }}."
result = { type = "object", required = ["kind"], properties = { kind = { enum = ["noun", "verb"] } } }
result-retries = 1
retry = { attempts = 2, delay = 0 }
)");
  for (int i = 0; i < 2; ++i) a.server.push(Reply::call("b" + std::to_string(i), "submit_result", R"({"kind": "adverb"})"));
  a.server.push(Reply::call("c1", "submit_result", R"({"kind": "noun"})"));
  auto r = repo.run({{"word", "hearth"}});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  auto& step = r.step("classify");
  BOOST_TEST(step.attempts == 2);
  BOOST_REQUIRE_EQUAL(step.attempt_list.size(), 2u);
  BOOST_TEST(step.attempt_list[0].reason == "result_rejected");
  BOOST_TEST(step.result["kind"] == "noun");
  auto retrying = events_of(r, "step.retrying");
  BOOST_REQUIRE_EQUAL(retrying.size(), 1u);
  BOOST_TEST(retrying[0]["message"].get<std::string>().find("rejected") != std::string::npos, retrying[0].dump());
  // The second attempt started a new conversation with the rendered prompt.
  auto third = a.server.requests()[2].json();
  BOOST_TEST(third["messages"].size() == 1u);
  BOOST_TEST(third["system"].dump().find("Classify hearth.") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(max_turns_and_a_broken_stream_fail_the_step_naming_the_cause) {
  AgentEnv a;
  TempRepo repo(local_agent_head() + R"([[steps]]
id = "loop"
prompt = "Keep going."
max-turns = 2

[[steps]]
id = "broken"
needs = ["loop"]
if = "${{ always() }}"
prompt = "Say something."
)");
  a.server.push(Reply::call("c1", "bash", R"({"command": "true"})"));
  a.server.push(Reply::call("c2", "bash", R"({"command": "true"})"));
  Reply garbage = Reply::say("half of an answer");
  garbage.fault = Reply::Fault::invalid_json;
  a.server.push(garbage);
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("loop").status == StepStatus::failed);
  BOOST_TEST(r.step("loop").attempt_list.back().reason == "max_turns");
  BOOST_TEST(r.step("loop").reason.find("2") != std::string::npos, r.step("loop").reason);
  BOOST_TEST(r.step("broken").status == StepStatus::failed);
  BOOST_TEST(r.step("broken").attempt_list.back().reason == "model");
  BOOST_TEST(r.step("broken").reason.find("JSON") != std::string::npos, r.step("broken").reason);
}

BOOST_AUTO_TEST_CASE(a_crash_between_turns_resumes_from_the_checkpointed_turn_without_repeating_it) {
  AgentEnv a;
  TempRepo repo(local_agent_head() + R"([[steps]]
id = "work"
prompt = "Append to the log, then finish."
)");
  a.server.push(Reply::call("c1", "bash", R"({"command": "echo turn-one >> log.txt"})"));
  Reply slow = Reply::call("c2", "bash", R"({"command": "echo never >> log.txt"})");
  slow.delay = std::chrono::milliseconds(10000);  // the engine dies while this request waits
  a.server.push(slow);
  a.server.push(Reply::call("c3", "bash", R"({"command": "echo turn-two >> log.txt"})"));
  a.server.push(Reply::say("All done."));

  const std::string run_id = "20261123-120000-a9e1c0";
  repo.crash_when(run_id, [&] {
    if (a.server.request_count() < 2) return false;
    auto store = hearth::engine::Store::open(repo.state_path());
    if (!store.ok()) return false;
    auto cp = (*store)->load_checkpoint(run_id, "work", 1);
    return cp.ok() && *cp && (**cp).value("turns", 0) == 1 && (**cp)["messages"].size() == 3u;
  });
  BOOST_TEST(repo.read("log.txt") == "turn-one\n");

  auto r = repo.resume(run_id);
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, r.step("work").reason);
  BOOST_TEST(r.step("work").result == "All done.");
  BOOST_TEST(repo.read("log.txt") == "turn-one\nturn-two\n");
  // Requests: turn 1, turn 2 (cut by the crash), turn 2 again, turn 3. No
  // request after the first started the conversation over.
  auto requests = a.server.requests();
  BOOST_REQUIRE_EQUAL(requests.size(), 4u);
  BOOST_TEST(requests[1].json()["messages"].size() == 3u);
  BOOST_TEST(requests[2].json()["messages"] == requests[1].json()["messages"]);
  BOOST_TEST(requests[3].json()["messages"].size() == 5u);
  auto interrupted = events_of(r, "step.interrupted");
  BOOST_TEST(interrupted.size() == 1u);
  // The store holds the resumed attempt's whole conversation, each message
  // once: the carried turn, the turns after it, the final reply.
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_REQUIRE(store.ok());
  auto cp = (*store)->load_checkpoint(run_id, "work", r.step("work").attempts);
  BOOST_REQUIRE(cp.ok());
  BOOST_REQUIRE(cp->has_value());
  const auto& stored = (**cp)["messages"];
  BOOST_REQUIRE_EQUAL(stored.size(), 6u);
  for (size_t i = 0; i < 5; ++i) BOOST_TEST(stored[i] == requests[3].json()["messages"][i], stored[i].dump());
  BOOST_TEST(stored[5].dump().find("All done.") != std::string::npos, stored[5].dump());
}

// The examples the quickstart runs: the real CLI, the real sandbox and tools,
// the model's side from the recorded cassettes.
BOOST_AUTO_TEST_CASE(the_agent_examples_run_offline_from_their_cassettes) {
  const char* bin = std::getenv("HEARTH_BIN");
  const char* src = std::getenv("HEARTH_SOURCE_ROOT");
  BOOST_REQUIRE(bin && src);
  hearth::testing::TempDir dir;
  auto sh = [&](const std::string& cmd) {
    std::string out = (dir.path / "out.txt").string();
    int rc = std::system((cmd + " > " + out + " 2>&1").c_str());
    return std::make_pair(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, hearth::testing::read_file(out));
  };
  std::string examples = std::string(src) + "/examples";
  auto triage = dir.path / "triage";
  auto fix = dir.path / "fix";
  BOOST_REQUIRE_EQUAL(sh("cp -r " + examples + "/triage " + triage.string() + " && cp -r " + examples + "/fix-tests " +
                         fix.string() + " && rm -rf " + triage.string() + "/.hearth/state.db* " + fix.string() +
                         "/.hearth/state.db* && cd " + fix.string() +
                         " && git init -q && git add -A && git -c user.name=t -c user.email=t@localhost commit -qm t")
                          .first,
                      0);
  auto [rc, out] = sh(std::string(bin) + " --repo " + triage.string() + " run triage --payload @" + triage.string() +
                      "/issue.json --model replay:" + examples + "/triage/cassette.jsonl");
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find("severity: high") != std::string::npos, out);
  BOOST_TEST(out.find("labels:   [\"crash\"]") != std::string::npos, out);
  // The conversation, as `hearth show --transcript` prints it from the store.
  std::string run_id = out.substr(4, out.find(' ', 4) - 4);  // "run <id> (triage)"
  std::tie(rc, out) = sh(std::string(bin) + " --repo " + triage.string() + " show " + run_id + " --transcript --step triage");
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find("step triage  attempt 1  turns 4") != std::string::npos, out);
  BOOST_TEST(out.find("→ read {\"path\":\"docs/labels.md\"}") != std::string::npos, out);
  BOOST_TEST(out.find("| crash | the program aborts") != std::string::npos, out);  // a tool result
  BOOST_TEST(out.find("result: {\"labels\":[\"crash\"]") != std::string::npos, out);
  std::tie(rc, out) = sh(std::string(bin) + " --repo " + triage.string() + " show " + run_id + " --transcript --step report");
  BOOST_TEST(rc == 2, out);
  BOOST_TEST(out.find("has no step 'report' with a recorded conversation") != std::string::npos, out);
  std::tie(rc, out) = sh(std::string(bin) + " --repo " + fix.string() + " run fix-tests --model replay:" + examples +
                         "/fix-tests/cassette.jsonl");
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find("ok   mean 2 4 6") != std::string::npos, out);
  BOOST_TEST(out.find("FAIL") == std::string::npos, out);
  // The fix was made in the run's checkout, not in the repository.
  BOOST_TEST(hearth::testing::read_file(fix / "lib/math.sh").find("($# + 1)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_loader_checks_agent_steps) {
  auto errors = [](const std::string& toml) {
    auto loaded = hearth::workflows::load_workflow_text(toml, "wf.toml");
    std::string all;
    for (auto& e : loaded.errors) all += e + "\n";
    return all;
  };
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nrun = \"x\"\nskill = \"s\"\n").find("wf.toml:3:7: step 'a' has 'run' and 'skill'") !=
             std::string::npos, errors("[[steps]]\nid = \"a\"\nrun = \"x\"\nskill = \"s\"\n"));
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\ntools = [\"bsh\"]\n").find("unknown tool 'bsh'") != std::string::npos);
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\ntools = [\"bsh\"]\n").find("did you mean 'bash'") != std::string::npos);
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\nresult = \"nope.json\"\n").find("wf.toml:4:10: 'result' of step 'a': cannot read schema file") !=
             std::string::npos, errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\nresult = \"nope.json\"\n"));
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"${{ steps.b.result }}\"\n[[steps]]\nid = \"b\"\nrun = \"true\"\n")
                 .find("does not need 'b'") != std::string::npos);
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nskill = \"../x\"\n").find("must be a skill's folder name") != std::string::npos);
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\nmax-turns = 0\n").find("'max-turns' of step 'a' must be between 1") !=
             std::string::npos);
  BOOST_TEST(errors("[[steps]]\nid = \"a\"\nprompt = \"p\"\nmax-turns = 3\nresult-retries = 0\n").empty());
}

BOOST_AUTO_TEST_SUITE_END()
