// Record a live session against the stand-in server, play it back offline,
// and refuse requests that no longer fit the recording.
#include <fstream>
#include <sstream>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "model/cassette.h"
#include "tests/engine/fixture.h"
#include "tests/model/model_fixture.h"

using namespace hearth;
using namespace hearth::testing;
using nlohmann::json;

namespace {

model::Tool bash_tool() {
  return {"bash", "Run a shell command",
          json::parse(R"({"type":"object","properties":{"command":{"type":"string"}},"required":["command"]})")};
}

/// A two-turn session: the model calls bash, gets the result, answers.
std::vector<model::Outcome> session(ModelFixture& f, const std::string& first_words = "Count the files") {
  std::vector<model::Outcome> outs;
  model::Request req = hello(first_words + " (token ghp_SECRETVALUE123)");
  req.tools.push_back(bash_tool());
  outs.push_back(f.send(req));
  if (!outs.back().ok()) return outs;
  req.messages.push_back(outs.back().response.message);
  req.messages.push_back(model::Message{model::Role::user, {model::tool_result("call_1", "3")}});
  outs.push_back(f.send(req));
  return outs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cassette)

BOOST_AUTO_TEST_CASE(record_then_replay_round_trip_without_secrets) {
  TempDir dir;
  std::string path = (dir.path / "session.jsonl").string();
  std::vector<model::Outcome> live;
  for (std::string provider : {"anthropic", "openai"}) {
    BOOST_TEST_CONTEXT(provider) {
      {
        ModelFixture f;
        auto o = f.options(provider);
        o.record_path = path;
        o.secrets = {"ghp_SECRETVALUE123"};
        f.make(provider + "/test-model", o);
        f.server.push(Reply::call("call_1", "bash", R"({"command": "ls | wc -l"})", "Counting."));
        f.server.push(Reply::say("There are 3 files. Key was " + o.api_key));
        live = session(f);
        BOOST_REQUIRE(live.size() == 2u);
        BOOST_REQUIRE(live[1].ok());
        std::string text = read_file(path);
        BOOST_TEST(text.find(o.api_key) == std::string::npos);          // the API key
        BOOST_TEST(text.find("ghp_SECRETVALUE123") == std::string::npos);  // a secret
        BOOST_TEST(text.find("***") != std::string::npos);
        BOOST_TEST(text.find("Counting.") != std::string::npos);
      }
      // Offline: no server, the same turns come back with their stream.
      uv_loop_t loop;
      uv_loop_init(&loop);
      {
        model::ClientOptions ro;
        ro.secrets = {"ghp_SECRETVALUE123"};
        auto c = model::make_client(&loop, "replay:" + path, ro);
        BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? std::string() : c.message()));
        std::vector<model::Outcome> replayed;
        std::string deltas;
        std::function<void(model::Request)> go = [&](model::Request req) {
          model::Stream s;
          s.on_text = [&](std::string_view d) { deltas.append(d); };
          s.on_tool_delta = [&](size_t, std::string_view d) { deltas.append(d); };
          s.on_done = [&, req](model::Outcome o) mutable {
            replayed.push_back(o);
            if (replayed.size() == 1 && o.ok()) {
              req.messages.push_back(o.response.message);
              req.messages.push_back(model::Message{model::Role::user, {model::tool_result("call_1", "3")}});
              go(req);
            }
          };
          (*c)->send(std::move(req), std::move(s));
        };
        model::Request req = hello("Count the files (token ghp_SECRETVALUE123)");
        req.tools.push_back(bash_tool());
        // The recorded request was redacted; the replayed one is matched
        // after the same redaction (the step's secrets are known to replay).
        go(req);
        uv_run(&loop, UV_RUN_DEFAULT);
        BOOST_REQUIRE(replayed.size() == 2u);
        BOOST_REQUIRE_MESSAGE(replayed[0].ok(), why(replayed[0]));
        BOOST_REQUIRE_MESSAGE(replayed[1].ok(), why(replayed[1]));
        BOOST_TEST(replayed[0].response.tool_calls().at(0)->input == live[0].response.tool_calls().at(0)->input);
        BOOST_TEST(replayed[1].response.text() == "There are 3 files. Key was ***");
        BOOST_TEST(replayed[1].response.usage.output_tokens == live[1].response.usage.output_tokens);
        BOOST_TEST(deltas.find("Counting.") != std::string::npos);
      }
      uv_run(&loop, UV_RUN_DEFAULT);
      BOOST_TEST(uv_loop_close(&loop) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_changed_workflow_fails_loudly_saying_what_differs) {
  TempDir dir;
  std::string path = (dir.path / "session.jsonl").string();
  {
    ModelFixture f;
    auto o = f.options("anthropic");
    o.record_path = path;
    f.make("anthropic/test-model", o);
    f.server.push(Reply::say("recorded"));
    model::Request req = hello("Summarise issue 12");
    req.tools.push_back(bash_tool());
    BOOST_REQUIRE(f.send(req).ok());
  }
  auto replay = [&](model::Request req) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::optional<model::Outcome> out;
    {
      auto c = model::make_client(&loop, "replay:" + path);
      BOOST_REQUIRE(c.ok());
      model::Stream s;
      s.on_done = [&](model::Outcome o) { out = std::move(o); };
      (*c)->send(std::move(req), std::move(s));
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0);
    return *out;
  };
  model::Request same = hello("Summarise issue 12");
  same.tools.push_back(bash_tool());
  BOOST_TEST(replay(same).ok());

  model::Request prompt = same;
  prompt.messages.back().content[0].text = "Summarise issue 13";
  auto a = replay(prompt);
  BOOST_REQUIRE(!a.ok());
  BOOST_TEST(model::to_string(a.error->kind) == "replay_mismatch");
  BOOST_TEST(a.error->message.find(path + ":2:") == 0);
  BOOST_TEST(a.error->message.find("the last message differs") != std::string::npos);
  BOOST_TEST(a.error->message.find("issue 13") != std::string::npos);

  model::Request schema = same;
  schema.tools[0].input_schema["required"] = json::array();
  auto b = replay(schema);
  BOOST_REQUIRE(!b.ok());
  BOOST_TEST(b.error->message.find("input schema of tool 'bash' differs") != std::string::npos);

  model::Request tools = same;
  tools.tools.push_back({"read", "Read a file", json::object()});
  auto c = replay(tools);
  BOOST_REQUIRE(!c.ok());
  BOOST_TEST(c.error->message.find(R"(the tools differ: recorded ["bash"], now ["bash","read"])") != std::string::npos);

  model::Request model_changed = same;
  model_changed.model = "other-model";
  auto d = replay(model_changed);
  BOOST_REQUIRE(!d.ok());
  BOOST_TEST(d.error->message.find("the model differs: recorded 'test-model', now 'other-model'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_exhausted_cassette_says_so) {
  TempDir dir;
  std::string path = (dir.path / "c.jsonl").string();
  write_file(path, R"({"hearth_cassette": 1, "model": "anthropic/m"}
{"request": {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "response": {"content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn"}}
)");
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<model::Outcome> outs;
  {
    auto c = model::make_client(&loop, "replay:" + path);
    BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? std::string() : c.message()));
    for (int i = 0; i < 2; ++i) {
      model::Request r;
      r.messages.push_back(model::user_text("hi"));
      model::Stream s;
      s.on_done = [&](model::Outcome o) { outs.push_back(std::move(o)); };
      (*c)->send(std::move(r), std::move(s));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
  BOOST_REQUIRE(outs.size() == 2u);
  BOOST_TEST(outs[0].ok());
  BOOST_TEST(outs[0].response.text() == "hello");
  BOOST_REQUIRE(!outs[1].ok());
  BOOST_TEST(outs[1].error->message.find("all 1 interactions of the cassette are used") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_cassettes_are_refused_with_file_and_line) {
  TempDir dir;
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto check = [&](const std::string& text, const std::string& want) {
    std::string path = (dir.path / "bad.jsonl").string();
    write_file(path, text);
    auto c = model::make_client(&loop, "replay:" + path);
    BOOST_REQUIRE(!c.ok());
    BOOST_TEST_CONTEXT(c.message()) { BOOST_TEST(c.message().find(want) != std::string::npos); }
  };
  check("{\"not\": \"a cassette\"}\n", "bad.jsonl:1: not a Hearth cassette");
  check("{\"hearth_cassette\": 1}\n{oops\n", "bad.jsonl:2: not a JSON object");
  check("{\"hearth_cassette\": 1}\n{\"request\": {\"messages\": []}}\n", "bad.jsonl:2: neither");
  check("", "is empty");
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

// What a cassette keeps of a secret: "***" wherever it occurs, in strings
// at any depth and in object keys; secrets under 4 bytes are left (they
// would match everywhere); with nothing to redact the value is untouched.
BOOST_AUTO_TEST_CASE(redaction_reaches_every_string_and_key_and_nothing_else) {
  const std::vector<std::string> secrets = {"s3cr3t", "ab"};
  json j = json::parse(R"({"a":["x s3cr3t y",{"deep":"s3cr3ts3cr3t"}],"s3cr3t-key":1,"ab":"ab cd",
                            "n":7,"keep":"plain","b":true,"z":null})");
  model::redact(j, secrets);
  BOOST_TEST(j == json::parse(R"({"a":["x *** y",{"deep":"******"}],"***-key":1,"ab":"ab cd",
                                  "n":7,"keep":"plain","b":true,"z":null})"),
             j.dump());
  json untouched = json::parse(R"({"k":["ab s3cr3t"]})");
  json copy = untouched;
  model::redact(copy, {"ab"});
  BOOST_TEST(copy == untouched);
  model::redact(copy, {});
  BOOST_TEST(copy == untouched);
}

BOOST_AUTO_TEST_SUITE_END()
