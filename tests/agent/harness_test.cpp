// The agent loop end to end over real sockets against the stand-in model
// server, with real file tools and a real bash: results corrected after a
// schema rejection, limits, checkpoints and resume (also after a crash in the
// middle of a tool call), cancellation, model errors, redaction.
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "tests/agent/harness_fixture.h"
#include "workflows/skill.h"

using namespace hearth;
using namespace hearth::testing;
using agent::Failure;
using nlohmann::json;
namespace tt = boost::test_tools;

namespace {

const char* kProviders[] = {"anthropic", "openai"};
constexpr auto npos = std::string::npos;

const json kSchema = json::parse(R"({
  "type": "object",
  "properties": {"severity": {"enum": ["low", "high"]}, "summary": {"type": "string"}},
  "required": ["severity", "summary"],
  "additionalProperties": false
})");

bool is_intent(const json& state) { return state["messages"].back()["role"] == "assistant"; }

/// Calls `act()` once `ready()` holds (checked every 5 ms while the loop runs).
/// The timer lives on the heap until its close callback: the loop may run
/// after this object is gone.
struct WhenReady {
  struct State {
    uv_timer_t timer{};
    std::function<bool()> ready;
    std::function<void()> act;
  };
  State* state;
  WhenReady(uv_loop_t* loop, std::function<bool()> ready, std::function<void()> act)
      : state(new State{{}, std::move(ready), std::move(act)}) {
    uv_timer_init(loop, &state->timer);
    state->timer.data = state;
    uv_timer_start(&state->timer, [](uv_timer_t* t) {
      auto* s = static_cast<State*>(t->data);
      if (!s->ready()) return;
      uv_timer_stop(t);
      s->act();
    }, 5, 5);
  }
  ~WhenReady() {
    uv_close(reinterpret_cast<uv_handle_t*>(&state->timer),
             [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(harness)

BOOST_AUTO_TEST_CASE(an_agent_reads_runs_bash_is_corrected_and_submits_a_valid_result) {
  for (std::string p : kProviders) {
    BOOST_TEST_CONTEXT(p) {
      HarnessFixture f;
      write_file(f.dir.path / "notes.txt", "disk full on the runner\n");
      write_file(f.dir.path / "AGENTS.md", "Labels are lower case.\n");
      f.server.push(Reply::call("c1", "read", R"({"path": "notes.txt"})", "Reading the notes."));
      f.server.push(Reply::call("c2", "bash", R"({"command": "mkdir -p logs && cd logs && echo from-bash"})"));
      f.server.push(Reply::call("c3", "submit_result", R"({"severity": "urgent", "summary": 5})"));
      f.server.push(Reply::call("c4", "submit_result", R"({"severity": "high", "summary": "The disk is full."})"));
      auto s = f.spec(p);
      s.result_schema = kSchema;
      auto h = f.make(std::move(s));
      auto out = f.run(*h);

      BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
      BOOST_TEST(out.result == json::parse(R"({"severity": "high", "summary": "The disk is full."})"));
      BOOST_TEST(out.turns == 4);
      BOOST_TEST(out.usage.input_tokens == 4 * 12);
      BOOST_TEST(out.usage.output_tokens == 4 * 7);
      auto reqs = f.server.requests();
      BOOST_REQUIRE(reqs.size() == 4u);

      // The system prompt: the preamble, then AGENTS.md, then the instructions.
      std::string sys = system_of(reqs[0]);
      BOOST_TEST(sys.find("You are Hearth's agent") == 0u);
      BOOST_TEST(sys.find("Labels are lower case.") != npos);
      BOOST_TEST(sys.find("Labels are lower case.") < sys.find("Triage the notes in notes.txt."));
      BOOST_TEST(tool_names_of(reqs[0]) ==
                     (std::vector<std::string>{"read", "write", "edit", "glob", "grep", "bash", "submit_result"}),
                 tt::per_element());

      auto read = last_tool_results(reqs[1]);
      BOOST_REQUIRE(read.size() == 1u);
      BOOST_TEST(read[0].id == "c1");
      BOOST_TEST(!read[0].is_error);
      BOOST_TEST(read[0].text.find("disk full on the runner") != npos);
      auto ran = last_tool_results(reqs[2]);
      BOOST_REQUIRE(ran.size() == 1u);
      BOOST_TEST(ran[0].text.find("from-bash") != npos);
      BOOST_TEST(ran[0].text.find("[exit code 0]") != npos);

      // The rejection, as the model received it: every error by JSON Pointer.
      auto rejected = last_tool_results(reqs[3]);
      BOOST_REQUIRE(rejected.size() == 1u);
      BOOST_TEST(rejected[0].id == "c3");
      BOOST_TEST(rejected[0].is_error);
      BOOST_TEST(rejected[0].text.find("/severity: Failed to match against any enum values.") != npos);
      BOOST_TEST(rejected[0].text.find("/summary: Value type not permitted by 'type' constraint.") != npos);
      BOOST_TEST(rejected[0].text.find("rejection 1; 1 more allowed") != npos);
      BOOST_REQUIRE(f.rejections.size() == 1u);
      BOOST_TEST(f.rejections[0].errors.size() == 2u);

      // Events and checkpoints: two per turn (intent, then complete).
      BOOST_TEST(f.checkpoints.size() == 8u);
      BOOST_TEST(is_intent(f.checkpoints[0]));
      BOOST_TEST(!is_intent(f.checkpoints[1]));
      BOOST_TEST(f.checkpoints[0]["messages_saved"] == 0);  // an append-only store writes the rest
      BOOST_TEST(f.checkpoints[1]["messages_saved"] == f.checkpoints[0]["messages"].size());
      BOOST_TEST(f.checkpoints.back()["bash_cwd"] == "/workspace/logs");
      BOOST_TEST(f.checkpoints.back()["result"] == out.result);
      BOOST_TEST(f.checkpoints.back()["rejections"] == 1);
      BOOST_TEST((agent::Harness::finished_result(f.checkpoints.back()) == out.result));
      BOOST_REQUIRE(f.turns.size() == 4u);
      BOOST_TEST(f.turns[0].usage.input_tokens == 12);
      BOOST_TEST(f.turns[3].total.output_tokens == 28);
      BOOST_TEST(f.turns[0].text == "Reading the notes.");
      BOOST_TEST(f.turns_started == (std::vector<int>{1, 2, 3, 4}), tt::per_element());
      BOOST_REQUIRE(f.calls.size() == 4u);
      BOOST_TEST(f.calls[1].name == "bash");
      BOOST_TEST(json::parse(f.calls[1].arguments)["command"] == "mkdir -p logs && cd logs && echo from-bash");
      BOOST_TEST(f.calls[3].output == "Result accepted.");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_skill_step_prompt_is_the_preamble_then_agents_md_then_the_skill_with_its_arguments) {
  HarnessFixture f;
  write_file(f.dir.path / "AGENTS.md", "Run `make check` before you finish.\n");
  write_file(f.dir.path / ".hearth/skills/triage/SKILL.md",
             "---\nname: triage\ndescription: Label an issue.\n---\nLabel issue {{issue}} by its text.\n");
  write_file(f.dir.path / ".hearth/skills/triage/references/labels.md", "bug, docs\n");
  auto load = workflows::find_skill(f.ws, "triage");
  BOOST_REQUIRE(load.ok());
  auto s = f.spec("openai");
  s.instructions = workflows::skill_instructions(*load.skill, ".hearth/skills/triage", R"({"issue": 42})");
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  std::string sys = system_of(f.server.requests()[0]);
  BOOST_TEST(sys == h->system_prompt());
  size_t preamble = sys.find("You are Hearth's agent"), guidance = sys.find("<project_guidance source=\"AGENTS.md\">"),
         agents = sys.find("Run `make check` before you finish."), skill = sys.find("<skill name=\"triage\">"),
         file = sys.find("- .hearth/skills/triage/references/labels.md"), args = sys.find("{\"issue\": 42}");
  BOOST_TEST(preamble == 0u);
  BOOST_TEST((preamble < guidance && guidance < agents && agents < skill && skill < file && file < args), sys);
  BOOST_TEST(args != npos);
  auto first = f.server.requests()[0].json()["messages"][1];
  BOOST_TEST(first["role"] == "user");
  BOOST_TEST(first["content"] == agent::default_task(false));
}

BOOST_AUTO_TEST_CASE(a_result_that_is_not_an_object_is_wrapped_and_checked) {
  HarnessFixture f;
  f.server.push(Reply::call("c1", "submit_result", R"({"result": ["bug", 7]})"));
  f.server.push(Reply::call("c2", "submit_result", R"({"result": ["bug", "ci"]})"));
  auto s = f.spec("anthropic");
  s.result_schema = json::parse(R"({"type": "array", "items": {"$ref": "#/definitions/label"},
                                   "definitions": {"label": {"type": "string"}}})");
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result == json::parse(R"(["bug", "ci"])"));
  auto reqs = f.server.requests();
  BOOST_TEST(reqs[0].json()["tools"].back()["input_schema"]["properties"]["result"]["type"] == "array");
  auto rejected = last_tool_results(reqs[1]);
  BOOST_REQUIRE(rejected.size() == 1u);
  BOOST_TEST(rejected[0].text.find("/result/1: Value type not permitted") != npos);
}

BOOST_AUTO_TEST_CASE(too_many_rejections_fail_with_the_last_errors) {
  HarnessFixture f;
  f.server.set_default(Reply::call("c", "submit_result", R"({"severity": "urgent", "summary": "x"})"));
  auto s = f.spec("openai");
  s.result_schema = kSchema;
  s.result_retries = 1;
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::result_rejected);
  BOOST_TEST(out.reason.find("rejected 2 times (result_retries is 1)") != npos, out.reason);
  BOOST_TEST(out.reason.find("/severity: Failed to match against any enum values.") != npos, out.reason);
  BOOST_TEST(out.turns == 2);
  BOOST_TEST(f.server.request_count() == 2u);
  BOOST_TEST(f.rejections.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_reply_without_submit_result_counts_as_a_rejection_and_is_answered) {
  HarnessFixture f;
  f.server.push(Reply::say("The severity is high."));
  f.server.push(Reply::call("c1", "submit_result", R"({"severity": "high", "summary": "full disk"})"));
  auto s = f.spec("anthropic");
  s.result_schema = kSchema;
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result["severity"] == "high");
  auto last = f.server.requests()[1].json()["messages"].back();
  BOOST_TEST(last["role"] == "user");
  std::string reminder = last["content"][0]["text"];
  BOOST_TEST(reminder.find("without calling submit_result") != npos, reminder);
  BOOST_TEST(f.rejections.size() == 1u);
}

BOOST_AUTO_TEST_CASE(without_a_schema_the_final_reply_is_the_result_and_unknown_tools_are_refused) {
  HarnessFixture f;
  f.server.push(Reply::call("c1", "web_search", R"({"q": "hearth"})"));
  f.server.push(Reply::say("All good."));
  auto h = f.make(f.spec("openai"));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result == json("All good."));
  auto answer = last_tool_results(f.server.requests()[1]);
  BOOST_REQUIRE(answer.size() == 1u);
  BOOST_TEST(answer[0].is_error);
  BOOST_TEST(answer[0].text.find("unknown tool 'web_search'") != npos, answer[0].text);
  BOOST_TEST(answer[0].text.find("read, write, edit, glob, grep, bash") != npos, answer[0].text);
  BOOST_TEST(f.checkpoints.back()["result"] == "All good.");
}

BOOST_AUTO_TEST_CASE(a_refusal_fails_the_attempt_with_the_models_words_and_is_saved) {
  for (std::string p : kProviders) {
    BOOST_TEST_CONTEXT(p) {
      HarnessFixture f;
      f.server.push(Reply::refuse("I can't help with that request."));
      f.server.set_default(Reply::say("A later reply that must not be asked for."));
      auto h = f.make(f.spec(p));
      auto out = f.run(*h);
      BOOST_TEST(out.failure == Failure::refused);
      BOOST_TEST(out.reason == "the model refused to continue in turn 1: I can't help with that request.", out.reason);
      BOOST_TEST(!out.model_error.has_value());
      BOOST_TEST(f.server.request_count() == 1u);  // neither retried nor continued
      BOOST_REQUIRE(!f.checkpoints.empty());
      const json& last = f.checkpoints.back()["messages"].back();
      BOOST_TEST(last["role"] == "assistant");
      BOOST_TEST(last.dump().find("I can't help with that request.") != npos, last.dump());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_final_reply_cut_off_by_max_tokens_fails) {
  HarnessFixture f;
  Reply r = Reply::say("The answer is");
  r.stop_reason = "max_tokens";
  f.server.push(r);
  auto s = f.spec("anthropic");
  s.response_max_tokens = 100;
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::cut_off);
  BOOST_TEST(out.reason.find("response_max_tokens (100)") != npos, out.reason);
}

BOOST_AUTO_TEST_CASE(max_turns_reached_fails_naming_the_limit) {
  HarnessFixture f;
  f.server.set_default(Reply::call("g", "glob", R"({"pattern": "*"})"));
  auto s = f.spec("anthropic");
  s.max_turns = 3;
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::max_turns);
  BOOST_TEST(out.reason == "max_turns reached: all 3 turns used without a final reply");
  BOOST_TEST(out.turns == 3);
  BOOST_TEST(f.server.request_count() == 3u);
}

BOOST_AUTO_TEST_CASE(the_token_budget_fails_the_turn_that_exceeds_it_before_its_tools_run) {
  HarnessFixture f;
  f.server.set_default(Reply::call("b", "bash", R"({"command": "echo x >> count.txt"})"));
  auto s = f.spec("openai");
  s.max_tokens = 50;  // 19 tokens a turn (12 in, 7 out): the third turn ends at 57
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::token_budget);
  BOOST_TEST(out.reason == "token budget exceeded: 57 tokens used (input 36 + output 21) over 3 turns; max_tokens is 50");
  BOOST_TEST(f.server.request_count() == 3u);
  BOOST_TEST(read_file(f.dir.path / "count.txt") == "x\nx\n");  // the third turn's call did not run
}

BOOST_AUTO_TEST_CASE(resume_from_a_checkpoint_continues_without_repeating_a_turn) {
  HarnessFixture f;
  write_file(f.dir.path / "notes.txt", "flaky test\n");
  f.server.push(Reply::call("c1", "bash", R"({"command": "mkdir -p sub && cd sub"})"));
  f.server.push(Reply::call("c2", "read", R"({"path": "notes.txt"})"));
  f.server.push(Reply::call("c3", "bash", R"({"command": "pwd"})"));
  f.server.push(Reply::say("done"));

  // The first engine stops right after turn 2's checkpoint was saved.
  std::unique_ptr<agent::Harness> first = f.make(f.spec("anthropic"));
  f.checkpoint_result = [&](const json& state) -> Status {
    if (state["turns"] == 2 && !is_intent(state)) first->cancel();
    return {};
  };
  auto stopped = f.run(*first);
  BOOST_TEST(stopped.failure == Failure::cancelled);
  BOOST_TEST(f.server.request_count() == 2u);
  json saved = f.checkpoints.back();
  BOOST_TEST(saved["turns"] == 2);
  BOOST_TEST(saved["bash_cwd"] == "/workspace/sub");
  first.reset();

  // A new engine: a fresh bash session, a fresh harness, the saved state.
  f.checkpoint_result = nullptr;
  f.bash = std::make_unique<agent::LocalBashSession>(&f.loop, f.ws);
  auto second = f.make(f.spec("anthropic"));
  auto out = f.run(*second, saved);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result == json("done"));
  BOOST_TEST(out.turns == 4);
  BOOST_TEST(out.usage.input_tokens == 4 * 12);

  auto reqs = f.server.requests();
  BOOST_REQUIRE(reqs.size() == 4u);  // turns 1 and 2 were not asked again
  auto before = reqs[1].json()["messages"], after = reqs[2].json()["messages"];
  BOOST_REQUIRE(after.size() == 5u);  // task, c1, result, c2, result
  for (size_t i = 0; i < before.size(); ++i) BOOST_TEST(after[i] == before[i]);
  BOOST_TEST(reqs[2].json()["system"] == reqs[0].json()["system"]);
  auto read = last_tool_results(reqs[2]);
  BOOST_REQUIRE(read.size() == 1u);
  BOOST_TEST(read[0].id == "c2");
  BOOST_TEST(read[0].text.find("flaky test") != npos);
  // The bash session resumed in the directory the checkpoint recorded.
  auto pwd = last_tool_results(reqs[3]);
  BOOST_REQUIRE(pwd.size() == 1u);
  BOOST_TEST(pwd[0].id == "c3");
  BOOST_TEST(pwd[0].text.find(fs::canonical(f.dir.path).string() + "/sub\n") != npos, pwd[0].text);
  BOOST_TEST(f.turns_started.back() == 4);
}

BOOST_AUTO_TEST_CASE(resume_after_a_crash_mid_tool_answers_the_call_interrupted) {
  HarnessFixture f;
  f.server.push(Reply::call("c1", "bash", R"({"command": "touch ran.txt"})"));
  f.server.push(Reply::say("stopped safely"));

  // The intent is saved, then the engine stops before the call runs.
  std::unique_ptr<agent::Harness> first = f.make(f.spec("openai"));
  f.checkpoint_result = [&](const json& state) -> Status {
    if (is_intent(state)) first->cancel();
    return {};
  };
  auto stopped = f.run(*first);
  BOOST_TEST(stopped.failure == Failure::cancelled);
  BOOST_REQUIRE(f.checkpoints.size() == 1u);
  json saved = f.checkpoints[0];
  first.reset();
  BOOST_TEST(!fs::exists(f.dir.path / "ran.txt"));

  f.checkpoint_result = nullptr;
  f.calls.clear();
  auto second = f.make(f.spec("openai"));
  auto out = f.run(*second, saved);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result == json("stopped safely"));
  auto answer = last_tool_results(f.server.requests()[1]);
  BOOST_REQUIRE(answer.size() == 1u);
  BOOST_TEST(answer[0].id == "c1");
  BOOST_TEST(answer[0].is_error);
  BOOST_TEST(answer[0].text == agent::kInterruptedToolResult);
  BOOST_TEST(!fs::exists(f.dir.path / "ran.txt"));  // never run again
  BOOST_REQUIRE(f.calls.size() == 1u);
  BOOST_TEST(f.calls[0].output == agent::kInterruptedToolResult);
  BOOST_TEST(f.server.request_count() == 2u);
}

BOOST_AUTO_TEST_CASE(a_failed_checkpoint_stops_the_agent_before_the_tools_run) {
  HarnessFixture f;
  f.server.push(Reply::call("c1", "bash", R"({"command": "touch ran.txt"})"));
  f.checkpoint_result = [](const json&) -> Status { return Error{"disk I/O error"}; };
  auto h = f.make(f.spec("anthropic"));
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::checkpoint);
  BOOST_TEST(out.reason == "checkpoint failed before the tool calls of turn 1: disk I/O error");
  BOOST_TEST(!fs::exists(f.dir.path / "ran.txt"));
}

BOOST_AUTO_TEST_CASE(a_429_with_retry_after_is_retried_by_the_client_and_the_turn_succeeds) {
  HarnessFixture f;
  f.server.push(Reply::failing(429, R"({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})", "1"));
  f.server.push(Reply::say("fine"));
  auto h = f.make(f.spec("anthropic"));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_TEST(out.result == json("fine"));
  BOOST_TEST(out.turns == 1);
  BOOST_TEST(f.server.request_count() == 2u);
  BOOST_REQUIRE(f.turns.size() == 1u);
  BOOST_TEST(f.turns[0].attempts == 2);
}

BOOST_AUTO_TEST_CASE(a_garbage_or_truncated_stream_fails_with_the_typed_model_error) {
  using F = Reply::Fault;
  struct Case {
    F fault;
    model::ErrorKind kind;
  } cases[] = {{F::truncate, model::ErrorKind::truncated_stream}, {F::invalid_json, model::ErrorKind::invalid_json}};
  for (std::string p : kProviders) {
    for (const auto& c : cases) {
      BOOST_TEST_CONTEXT(p << " " << model::to_string(c.kind)) {
        HarnessFixture f;
        Reply r = Reply::call("c1", "bash", R"({"command": "touch ran.txt"})", "Running it.");
        r.fault = c.fault;
        f.server.set_default(r);
        auto s = f.spec(p);
        s.client_options.max_retries = 0;
        auto h = f.make(std::move(s));
        auto out = f.run(*h);
        BOOST_TEST(out.failure == Failure::model);
        BOOST_REQUIRE(out.model_error.has_value());
        BOOST_TEST(*out.model_error == c.kind);
        std::string expect = std::string("the model request of turn 1 failed (") + model::to_string(c.kind) + "): ";
        BOOST_TEST(out.reason.find(expect) == 0u, out.reason);
        BOOST_TEST(out.reason.size() > expect.size());
        BOOST_TEST(out.turns == 0);
        BOOST_TEST(!fs::exists(f.dir.path / "ran.txt"));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(cancel_aborts_the_model_request_in_flight) {
  HarnessFixture f;
  Reply slow = Reply::say("too late");
  slow.delay = std::chrono::milliseconds(10000);
  f.server.push(slow);
  auto h = f.make(f.spec("anthropic"));
  WhenReady when(&f.loop, [&] { return f.server.request_count() == 1u; }, [&] { h->cancel(); });
  auto started = std::chrono::steady_clock::now();
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::cancelled);
  BOOST_TEST(out.reason == "cancelled");
  BOOST_TEST((std::chrono::steady_clock::now() - started < std::chrono::seconds(5)));
  BOOST_TEST(!h->running());
}

BOOST_AUTO_TEST_CASE(cancel_kills_the_bash_call_in_flight) {
  HarnessFixture f;
  f.server.push(Reply::call("c1", "bash", R"({"command": "echo $$ > pid.txt; exec sleep 30"})"));
  auto h = f.make(f.spec("openai"));
  fs::path pid_file = f.dir.path / "pid.txt";
  WhenReady when(&f.loop, [&] { return !read_file(pid_file).empty(); }, [&] { h->cancel(); });
  auto out = f.run(*h);
  BOOST_TEST(out.failure == Failure::cancelled);
  BOOST_TEST(process_gone(std::stoi(read_file(pid_file))));
  BOOST_TEST(f.server.request_count() == 1u);
  BOOST_TEST(f.calls.empty());          // the cancelled call's turn is not recorded
  BOOST_TEST(f.checkpoints.size() == 1u);  // only its intent: resumed, it reads "interrupted"
}

BOOST_AUTO_TEST_CASE(the_redact_hook_keeps_secrets_out_of_events) {
  HarnessFixture f;
  const std::string secret = "sk-live-0123456789";
  f.redact = [&](std::string s) {
    for (size_t at; (at = s.find(secret)) != npos;) s.replace(at, secret.size(), "***");
    return s;
  };
  f.server.push(Reply::call("c1", "bash", R"({"command": "echo sk-live-0123456789"})", "Key: sk-live-0123456789"));
  f.server.push(Reply::call("c2", "submit_result", R"({"severity": "sk-live-0123456789", "summary": "x"})"));
  f.server.set_default(Reply::call("c3", "submit_result", R"({"severity": "low", "summary": "x"})"));
  auto s = f.spec("anthropic");
  s.result_schema = kSchema;
  auto h = f.make(std::move(s));
  auto out = f.run(*h);
  BOOST_REQUIRE_MESSAGE(out.ok(), out.reason);
  BOOST_REQUIRE(f.calls.size() == 3u);
  BOOST_TEST(f.calls[0].arguments.find("***") != npos);
  BOOST_TEST(f.calls[0].output.find("***") != npos);
  std::string everything = f.turns[0].text;
  for (const auto& c : f.calls) everything += c.arguments + c.output;
  for (const auto& r : f.rejections)
    for (const auto& e : r.errors) everything += e;
  BOOST_TEST(everything.find(secret) == npos, everything);
  // The model itself saw the real output: redaction is for events only.
  BOOST_TEST(last_tool_results(f.server.requests()[1])[0].text.find(secret) != npos);
}

BOOST_AUTO_TEST_CASE(create_and_resume_refuse_what_cannot_work) {
  HarnessFixture f;
  auto refused = [&](agent::AgentSpec s) {
    auto h = agent::Harness::create(&f.loop, std::move(s), {});
    return h.ok() ? std::string("(created)") : h.message();
  };
  auto s = f.spec("anthropic");
  s.result_schema = json::parse(R"({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}})");
  BOOST_TEST(refused(s).find("the result schema is not valid JSON Schema (draft 7)") == 0u, refused(s));
  s = f.spec("anthropic");
  s.tools = {"read", "curl"};
  BOOST_TEST(refused(s).find("unknown tool 'curl'") != npos);
  s = f.spec("anthropic");
  s.bash = nullptr;
  BOOST_TEST(refused(s) == "the bash tool is offered but no bash session was given");
  s = f.spec("anthropic");
  s.workspace = (f.dir.path / "missing").string();
  BOOST_TEST(refused(s).find("the agent's workspace: ") == 0u, refused(s));
  s = f.spec("anthropic");
  s.model = "gemini/x";
  BOOST_TEST(refused(s).find("gemini") != npos, refused(s));

  auto h = f.make(f.spec("anthropic"));
  Status bad = h->resume(json{{"hearth_agent_state", 1}, {"messages", json::array()}});
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.message() == "cannot resume the agent: field 'system' must be a string");
  json finished = {{"hearth_agent_state", 1}, {"system", ""}, {"turns", 1}, {"rejections", 0},
                   {"usage", {{"input_tokens", 1}, {"output_tokens", 1}, {"cache_read_input_tokens", 0},
                              {"cache_creation_input_tokens", 0}}},
                   {"messages", json::array({model::to_json(model::user_text("go"))})}, {"result", 42}};
  Status done = h->resume(finished);
  BOOST_REQUIRE(!done.ok());
  BOOST_TEST(done.message().find("finished") != npos, done.message());
  BOOST_TEST((agent::Harness::finished_result(finished) == json(42)));
  BOOST_TEST(f.server.request_count() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
