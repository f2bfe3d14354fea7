// Commands and tools implemented by the host program (register_command,
// register_tool), through the public headers only (this file is part of the
// public_api_tests target, whose include path is include/ alone). The model
// is the stand-in server of tests/, speaking the Anthropic stream on
// 127.0.0.1; the step's commands run in real processes through the shim.
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include <hearth/hearth.h>
#include <nlohmann/json.hpp>

#include "../support/model_server.h"

#include "host.h"

namespace fs = std::filesystem;

using namespace hearth::testing;

namespace {

struct HostProgram : ApiHost {
  HostProgram() : ApiHost(".hearth/state.db", /*record=*/true) {}
  hearth::Workflow workflow(const std::string& text) { return ApiHost::workflow(text, "host.toml"); }
  hearth::RunResult run(const hearth::Workflow& wf) {
    std::optional<hearth::RunResult> result;
    auto id = engine->start(wf, {}, [&](const hearth::RunResult& r) { result = r; });
    BOOST_REQUIRE_MESSAGE(id.ok(), why(id));
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_REQUIRE(result.has_value());
    return *result;
  }
  bool has(const std::string& text) const { return output.find(text) != std::string::npos; }
};

// Replies after a delay on the host's loop, as a handler doing real I/O would.
void reply_later(uv_loop_t* loop, std::function<void()> fn) {
  struct Later {
    uv_timer_t timer{};
    std::function<void()> fn;
  };
  auto* later = new Later{{}, std::move(fn)};
  uv_timer_init(loop, &later->timer);
  later->timer.data = later;
  uv_timer_start(&later->timer, [](uv_timer_t* t) noexcept {
    auto* l = static_cast<Later*>(t->data);
    l->fn();
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) noexcept { delete static_cast<Later*>(h->data); });
  }, 20, 0);
}

// A [tools.<tool>] table the host answers, then an agent step `id` asked
// `prompt`, with the tools read and <tool>.
std::string host_tool_step(const std::string& tool, const std::string& id, const std::string& prompt) {
  return "[tools." + tool + "]\nhost = true\n\n[[steps]]\nid = \"" + id + "\"\nprompt = \"" + prompt + "\"\ntools = [\"read\", \"" +
         tool + "\"]\n";
}

const char* kNotify = R"(
name = "notify"
[commands.notify]
host = true
allow = ["send *", "fail"]
timeout = "10s"

[[steps]]
id = "call"
commands = ["notify"]
run = '''
# Steps run under bash -e: keep going past the failing calls to see each status.
rc=0; echo 'body text' | notify send deploy ./out.txt || rc=$?
echo "send-exit=$rc"
rc=0; notify fail < /dev/null || rc=$?; echo "fail-exit=$rc"
rc=0; notify delete everything < /dev/null || rc=$?; echo "denied-exit=$rc"
'''
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(host_extensions)

BOOST_AUTO_TEST_CASE(a_step_calls_a_command_the_host_implements_under_the_commands_policy) {
  HostProgram h;
  std::vector<hearth::CommandCall> calls;
  auto reg = h.engine->register_command("notify", [&](const hearth::CommandCall& c, auto reply) {
    calls.push_back(c);
    if (c.argv.size() > 1 && c.argv[1] == "send") {
      reply({0, "sent " + c.argv[2] + " with input [" + c.input + "]\n", ""});
    } else {
      reply_later(&h.loop, [reply] { reply({3, "", "no such channel\n"}); });
    }
  });
  BOOST_REQUIRE(reg.ok());
  auto result = h.run(h.workflow(kNotify));
  BOOST_TEST(result.status == hearth::RunStatus::succeeded, result.error);

  // The handler's output, stderr and exit status reach the calling script.
  BOOST_TEST(h.has("sent deploy with input [body text\n]"), h.output);
  BOOST_TEST(h.has("send-exit=0"), h.output);
  BOOST_TEST(h.has("no such channel"), h.output);
  BOOST_TEST(h.has("fail-exit=3"), h.output);
  // A call outside the command's allow patterns is refused before the host sees it.
  BOOST_TEST(h.has("denied-exit=126"), h.output);
  BOOST_TEST(h.has("is not granted: no allow pattern of command 'notify' matches"), h.output);
  BOOST_REQUIRE(calls.size() == 2u);
  const auto& c = calls[0];
  BOOST_TEST(c.run_id == result.run_id);
  BOOST_TEST(c.step_id == "call");
  BOOST_TEST(c.attempt == 1);
  BOOST_TEST((c.argv == std::vector<std::string>{"notify", "send", "deploy", "./out.txt"}));
  BOOST_TEST(fs::equivalent(c.workspace, h.dir));
  BOOST_TEST(fs::equivalent(c.cwd, h.dir));

  // Each call is journaled like a program's: started and finished events.
  int started = 0, finished = 0;
  for (const auto& e : h.events) {
    if (e.data_json.find("\"notify\"") == std::string::npos) continue;
    started += e.type == "command.started";
    finished += e.type == "command.finished";
  }
  BOOST_TEST(started == 3);  // the refused call is journaled too
  BOOST_TEST(finished == 2);
}

BOOST_AUTO_TEST_CASE(a_handler_that_never_replies_times_the_call_out) {
  HostProgram h;
  std::string text = kNotify;
  text.replace(text.find("timeout = \"10s\""), 15, "timeout = \"1s\"");
  int called = 0;
  BOOST_REQUIRE(h.engine->register_command("notify", [&](const hearth::CommandCall&, auto) { ++called; }).ok());
  auto result = h.run(h.workflow(text));
  BOOST_TEST(result.status == hearth::RunStatus::succeeded, result.error);
  BOOST_TEST(called == 2);
  BOOST_TEST(h.has("send-exit=124"), h.output);
  BOOST_TEST(h.has("timed out after 1000 ms"), h.output);
}

BOOST_AUTO_TEST_CASE(a_handler_that_throws_fails_its_call_and_the_run_goes_on) {
  HostProgram h;
  BOOST_REQUIRE(h.engine->register_command("notify", [](const hearth::CommandCall&, auto) -> void {
    throw std::runtime_error("the chat server refused us");
  }).ok());
  auto result = h.run(h.workflow(kNotify));
  BOOST_TEST(result.status == hearth::RunStatus::succeeded, result.error);
  BOOST_TEST(h.has("send-exit=1"), h.output);
  BOOST_TEST(h.has("the host's handler of 'notify' failed: the chat server refused us"), h.output);
  BOOST_TEST(h.has("fail-exit=1"), h.output);
}

BOOST_AUTO_TEST_CASE(a_workflow_needing_an_unregistered_command_or_tool_does_not_start) {
  HostProgram h;
  std::string text = std::string(kNotify) + "\n" + host_tool_step("lookup", "agent", "Look something up.") + "model = \"anthropic/test\"\n";
  auto wf = h.workflow(text);
  auto id = h.engine->start(wf, {}, [](const hearth::RunResult&) { BOOST_FAIL("a refused run finished"); });
  BOOST_REQUIRE(!id.ok());
  BOOST_TEST(id.message().find("command 'notify'") != std::string::npos, id.message());
  BOOST_TEST(id.message().find("register_command") != std::string::npos, id.message());
  BOOST_TEST(id.message().find("tool 'lookup'") != std::string::npos, id.message());
  BOOST_TEST(id.message().find("host.toml:") != std::string::npos, id.message());
  auto runs = h.engine->runs();
  BOOST_REQUIRE(runs.ok());
  BOOST_TEST(runs->empty(), "a refused run was recorded");
}

BOOST_AUTO_TEST_CASE(the_loader_names_misdeclared_host_commands_and_tools) {
  auto r = hearth::load_workflow_text(R"(
[commands.notify]
host = true
exec = "/bin/echo"
allow = ["*"]
[tools.bash]
host = true
[tools.lookup]
[[steps]]
id = "a"
prompt = "x"
tools = ["lookup", "lokup_user"]
)", "bad.toml");
  BOOST_TEST(!r);
  std::string all;
  for (auto& e : r.errors) all += e + "\n";
  BOOST_TEST(all.find("bad.toml:4:8: 'exec' of [commands.notify] does not apply") != std::string::npos, all);
  BOOST_TEST(all.find("'bash' is a built-in tool") != std::string::npos, all);
  BOOST_TEST(all.find("[tools.lookup] needs host = true") != std::string::npos, all);
  BOOST_TEST(all.find("unknown tool 'lokup_user'") != std::string::npos, all);
}

BOOST_AUTO_TEST_CASE(registration_refuses_bad_names_and_schemas) {
  HostProgram h;
  auto noop = [](const hearth::ToolCall&, std::function<void(hearth::ToolReply)>) {};
  BOOST_TEST(!h.engine->register_command("../x", [](const hearth::CommandCall&, auto) {}).ok());
  BOOST_TEST(!h.engine->register_tool("bash", "d", R"({"type": "object"})", noop).ok());
  BOOST_TEST(!h.engine->register_tool("has space", "d", R"({"type": "object"})", noop).ok());
  auto not_object = h.engine->register_tool("lookup", "d", R"({"type": "string"})", noop);
  BOOST_REQUIRE(!not_object.ok());
  BOOST_TEST(not_object.message().find("\"type\": \"object\"") != std::string::npos, not_object.message());
  BOOST_TEST(!h.engine->register_tool("lookup", "d", "{not json", noop).ok());
  BOOST_TEST(h.engine->register_tool("lookup", "d", R"({"type": "object"})", noop).ok());
}

BOOST_AUTO_TEST_CASE(the_model_calls_a_tool_the_host_implements) {
  ModelServer server;
  ::setenv("ANTHROPIC_API_KEY", "test-key-0000", 1);
  HostProgram h;
  std::vector<hearth::ToolCall> calls;
  auto reg = h.engine->register_tool(
      "lookup_customer", "Finds a customer's plan by name.",
      R"({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})",
      [&](const hearth::ToolCall& c, std::function<void(hearth::ToolReply)> reply) {
        calls.push_back(c);
        reply_later(&h.loop, [reply] { reply({"plan: enterprise, seats: 40", false}); });
      });
  BOOST_REQUIRE_MESSAGE(reg.ok(), why(reg));
  server.push(Reply::call("t1", "lookup_customer", R"({"name": "acme"})", "Looking it up."));
  server.push(Reply::call("t2", "lookup_customer", R"({"name": 42})"));
  server.push(Reply::say("Acme is on the enterprise plan."));
  auto wf = h.workflow(R"(
name = "support"
[model]
name = "anthropic/claude-test"
base-url = ")" + server.url() + "\"\n" + host_tool_step("lookup_customer", "answer", "Which plan is acme on?"));
  auto result = h.run(wf);
  BOOST_TEST(result.status == hearth::RunStatus::succeeded, result.error);

  // The handler ran once, for the valid call, with the model's arguments.
  BOOST_REQUIRE(calls.size() == 1u);
  BOOST_TEST(calls[0].tool == "lookup_customer");
  BOOST_TEST(calls[0].step_id == "answer");
  BOOST_TEST(calls[0].run_id == result.run_id);
  BOOST_TEST(nlohmann::json::parse(calls[0].arguments_json) == nlohmann::json({{"name", "acme"}}));

  auto requests = server.requests();
  BOOST_REQUIRE(requests.size() == 3u);
  // The model was offered the tool with the host's description and schema.
  auto first = requests[0].json();
  bool offered = false;
  for (auto& t : first["tools"])
    if (t["name"] == "lookup_customer") {
      offered = t["description"] == "Finds a customer's plan by name." && t["input_schema"]["required"][0] == "name";
    }
  BOOST_TEST(offered, first["tools"].dump());
  // Its reply reached the model; the invalid call got the violation instead.
  BOOST_TEST(requests[1].body.find("plan: enterprise, seats: 40") != std::string::npos);
  BOOST_TEST(requests[2].body.find("invalid arguments for lookup_customer") != std::string::npos, requests[2].body);
  BOOST_TEST(requests[2].body.find("/name") != std::string::npos);

  auto run = h.engine->run(result.run_id);
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->steps.at(0).status == hearth::StepStatus::succeeded);
}

BOOST_AUTO_TEST_SUITE_END()
