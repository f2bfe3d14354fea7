// Both providers end to end over real sockets against the stand-in server:
// text, tool calls with streamed arguments, usage, the recorded SDK streams,
// every fault (retries, timeouts, broken streams), cancellation, concurrency.
#include <fstream>
#include <functional>
#include <sstream>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/model/model_fixture.h"
#include "tests/support/testdata.h"

using namespace hearth;
using namespace hearth::testing;
using model::ErrorKind;
using model::StopReason;
using nlohmann::json;

namespace {

const char* kProviders[] = {"anthropic", "openai"};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path streams() { return testdata_dir() / "model-streams"; }

// What `provider`'s client made of the recorded stream `file` (under
// tests/data/model-streams), which must be a success.
model::Outcome answered_by_recording(const std::string& provider, const std::string& file) {
  ModelFixture f;
  f.make(provider);
  f.server.push(Reply::raw(slurp(streams() / file)));
  auto out = f.send(hello());
  BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
  return out;
}

// Checks that `out` failed as `kind` with HTTP `status` after `attempts`,
// its message holding `part`.
void expect_failed(const model::Outcome& out, const std::string& kind, int status, int attempts, const std::string& part) {
  BOOST_REQUIRE(!out.ok());
  BOOST_TEST(model::to_string(out.error->kind) == kind);
  BOOST_TEST(out.error->http_status == status);
  BOOST_TEST(out.error->attempts == attempts);
  BOOST_TEST(out.error->message.find(part) != std::string::npos);
}

// Runs `body` once per provider with a fresh fixture made for it; a failure
// names the provider.
void for_each_provider(const std::function<void(ModelFixture&, const std::string&)>& body) {
  for (std::string p : kProviders) {
    BOOST_TEST_CONTEXT(p) {
      ModelFixture f;
      f.make(p);
      body(f, p);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(model_client)

BOOST_AUTO_TEST_CASE(text_and_usage_stream_from_both_providers) {
  for_each_provider([&](ModelFixture& f, const std::string& p) {
    Reply r = Reply::say("Hello there, this is the stand-in speaking.");
    r.input_tokens = 31;
    r.output_tokens = 9;
    f.server.push(r);
    std::string live;
    model::Stream s;
    s.on_text = [&](std::string_view d) { live.append(d); };
    auto out = f.send(hello(), std::move(s));
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    BOOST_TEST(out.response.text() == "Hello there, this is the stand-in speaking.");
    BOOST_TEST(live == out.response.text());
    BOOST_TEST(out.response.stop_reason == StopReason::end_turn);
    BOOST_TEST(out.response.usage.input_tokens == 31);
    BOOST_TEST(out.response.usage.output_tokens == 9);
    BOOST_TEST(out.response.attempts == 1);

    auto req = f.server.requests().at(0);
    json body = req.json();
    BOOST_TEST(body["model"] == "test-model");
    BOOST_TEST(body["stream"] == true);
    if (p == "anthropic") {
      BOOST_TEST(req.path == "/v1/messages");
      BOOST_TEST(req.headers["x-api-key"] == "sk-test-anthropic-0123456789");
      BOOST_TEST(req.headers["anthropic-version"] == "2023-06-01");
      BOOST_TEST(body["system"] == "You are terse.");
    } else {
      BOOST_TEST(req.path == "/v1/chat/completions");
      BOOST_TEST(req.headers["authorization"] == "Bearer sk-test-openai-0123456789");
      BOOST_TEST(body["stream_options"]["include_usage"] == true);
      BOOST_TEST(body["messages"][0]["role"] == "system");
    }
  });
}

BOOST_AUTO_TEST_CASE(tool_call_arguments_are_assembled_from_fragments) {
  const std::string args = R"({"location": "San Francisco, CA", "unit": "fahrenheit", "days": [1, 2]})";
  for_each_provider([&](ModelFixture& f, const std::string&) {
    f.server.push(Reply::call("call_1", "get_weather", args, "Let me check."));
    std::string fragments, started;
    int deltas = 0;
    model::Stream s;
    s.on_tool_start = [&](size_t i, const std::string& id, const std::string& name) {
      started = std::to_string(i) + ":" + id + ":" + name;
    };
    s.on_tool_delta = [&](size_t, std::string_view d) {
      fragments.append(d);
      ++deltas;
    };
    model::Request req = hello("Weather?");
    req.tools.push_back({"get_weather", "Current weather", json::parse(R"({"type":"object","properties":{"location":{"type":"string"}}})")});
    auto out = f.send(std::move(req), std::move(s));
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    BOOST_TEST(out.response.stop_reason == StopReason::tool_use);
    auto calls = out.response.tool_calls();
    BOOST_REQUIRE(calls.size() == 1u);
    BOOST_TEST(calls[0]->id == "call_1");
    BOOST_TEST(calls[0]->name == "get_weather");
    BOOST_TEST(calls[0]->input == json::parse(args));
    BOOST_TEST(fragments == args);
    BOOST_TEST(deltas > 5);  // it really arrived in pieces
    BOOST_TEST(started == "0:call_1:get_weather");
    BOOST_TEST(out.response.text() == "Let me check.");
  });
}

BOOST_AUTO_TEST_CASE(conversation_with_tool_results_is_encoded_per_provider) {
  for_each_provider([&](ModelFixture& f, const std::string& p) {
    model::Request req = hello("List files");
    req.tools.push_back({"bash", "Run a command", json::parse(R"({"type":"object","properties":{"command":{"type":"string"}},"required":["command"]})")});
    model::Message a{model::Role::assistant, {}};
    a.content.push_back(model::Block{model::Block::Type::text, "Running ls.", "", "", nullptr, false});
    a.content.push_back(model::Block{model::Block::Type::tool_use, "", "t1", "bash", json{{"command", "ls"}}, false});
    req.messages.push_back(a);
    req.messages.push_back(model::Message{model::Role::user, {model::tool_result("t1", "a.txt\nb.txt")}});
    auto out = f.send(req);
    BOOST_REQUIRE(out.ok());
    json body = f.server.requests().at(0).json();
    if (p == "anthropic") {
      BOOST_TEST(body["tools"][0]["name"] == "bash");
      BOOST_TEST(body["tools"][0]["input_schema"]["required"][0] == "command");
      BOOST_TEST(body["messages"][1]["content"][1]["type"] == "tool_use");
      BOOST_TEST(body["messages"][1]["content"][1]["input"]["command"] == "ls");
      BOOST_TEST(body["messages"][2]["content"][0]["type"] == "tool_result");
      BOOST_TEST(body["messages"][2]["content"][0]["tool_use_id"] == "t1");
    } else {
      BOOST_TEST(body["tools"][0]["type"] == "function");
      BOOST_TEST(body["tools"][0]["function"]["parameters"]["required"][0] == "command");
      const json& asst = body["messages"][2];
      BOOST_TEST(asst["role"] == "assistant");
      BOOST_TEST(asst["content"] == "Running ls.");
      BOOST_TEST(asst["tool_calls"][0]["function"]["arguments"] == R"({"command":"ls"})");
      BOOST_TEST(body["messages"][3]["role"] == "tool");
      BOOST_TEST(body["messages"][3]["tool_call_id"] == "t1");
      BOOST_TEST(body["messages"][3]["content"] == "a.txt\nb.txt");
    }
  });
}

BOOST_AUTO_TEST_CASE(a_tool_result_with_invalid_utf8_is_sent_not_thrown) {
  for_each_provider([&](ModelFixture& f, const std::string&) {
    model::Request req = hello("cat a binary");
    model::Message a{model::Role::assistant, {}};
    a.content.push_back(model::Block{model::Block::Type::tool_use, "", "t1", "bash", json{{"command", "cat x.bin"}}, false});
    req.messages.push_back(a);
    req.messages.push_back(model::Message{model::Role::user, {model::tool_result("t1", "bytes \xff\xfe end")}});
    auto out = f.send(req);
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    std::string body = f.server.requests().at(0).body;
    BOOST_TEST(body.find("bytes \xEF\xBF\xBD\xEF\xBF\xBD end") != std::string::npos);  // U+FFFD twice
  });
}

// The recorded SDK streams, served over HTTP in 7-byte chunks: the client
// rebuilds exactly the message the SDKs' tests expect.
BOOST_AUTO_TEST_CASE(recorded_anthropic_streams_reassemble_to_the_expected_messages) {
  json expected = json::parse(slurp(streams() / "anthropic-sdk" / "expected.json"))["assembled"];
  int checked = 0;
  for (auto& [file, want] : expected.items()) {
    BOOST_TEST_CONTEXT(file) {
      ModelFixture f;
      auto o = f.options("anthropic");
      o.max_retries = 0;
      f.make("anthropic/test-model", o);
      Reply r = Reply::raw(slurp(streams() / "anthropic-sdk" / file));
      r.raw_chunk = 7;
      f.server.push(r);
      auto out = f.send(hello());
      const json& msg = want["assembled"]["message"];
      if (!want["ends_with_blank_line"].get<bool>()) {
        // message_stop is never dispatched: the stream is incomplete.
        BOOST_REQUIRE(!out.ok());
        BOOST_TEST(model::to_string(out.error->kind) == "truncated_stream");
      } else {
        BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
        BOOST_TEST(out.response.stop_reason_raw == msg["stop_reason"].get<std::string>());
      }
      const auto& resp = out.response;
      BOOST_TEST(resp.id == msg["id"].get<std::string>());
      BOOST_TEST(resp.model == msg["model"].get<std::string>());
      BOOST_TEST(resp.usage.input_tokens == msg["usage"]["input_tokens"].get<int64_t>());
      BOOST_TEST(resp.usage.output_tokens == msg["usage"]["output_tokens"].get<int64_t>());
      if (out.ok()) {
        // Our blocks: the text and complete tool_use blocks, in order.
        json mine = json::array(), theirs = json::array();
        for (const auto& b : resp.message.content) {
          if (b.type == model::Block::Type::text) mine.push_back({{"text", b.text}});
          else mine.push_back({{"id", b.id}, {"name", b.name}, {"input", b.input}});
        }
        for (const auto& b : msg["content"]) {
          if (b["type"] == "text") theirs.push_back({{"text", b["text"]}});
          if (b["type"] == "tool_use" && !b.contains("_incomplete_input_json")) {
            theirs.push_back({{"id", b["id"]}, {"name", b["name"]}, {"input", b["input"]}});
          }
        }
        BOOST_TEST(mine == theirs);
      }
      ++checked;
    }
  }
  BOOST_TEST(checked == 13);
}

BOOST_AUTO_TEST_CASE(documented_streams_of_both_providers) {
  {
    auto out = answered_by_recording("anthropic", "anthropic-tool-use.sse");
    BOOST_TEST(out.response.text() == "Okay, let's check the weather for San Francisco, CA:");
    BOOST_REQUIRE(out.response.tool_calls().size() == 1u);
    BOOST_TEST(out.response.tool_calls()[0]->input == json::parse(R"({"location": "San Francisco, CA", "unit": "fahrenheit"})"));
    BOOST_TEST(out.response.usage.input_tokens == 472);
    BOOST_TEST(out.response.usage.output_tokens == 89);
  }
  {
    auto out = answered_by_recording("openai", "openai-tool-calls.sse");
    BOOST_TEST(out.response.stop_reason == StopReason::tool_use);
    auto calls = out.response.tool_calls();
    BOOST_REQUIRE(calls.size() == 2u);
    BOOST_TEST(calls[0]->id == "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    BOOST_TEST(calls[0]->input == json::parse(R"({"location":"Paris, France"})"));
    BOOST_TEST(calls[1]->name == "get_time");
    BOOST_TEST(calls[1]->input == json::parse(R"({"tz":"CET"})"));
  }
  {
    auto out = answered_by_recording("openai", "openai-text.sse");
    BOOST_TEST(out.response.text() == "Hello");
    BOOST_TEST(out.response.usage.input_tokens == 9);
    BOOST_TEST(out.response.usage.output_tokens == 2);
  }
}

BOOST_AUTO_TEST_CASE(a_tool_call_cut_off_by_max_tokens_is_not_returned) {
  for_each_provider([&](ModelFixture& f, const std::string& p) {
    Reply r = Reply::call("c1", "write", R"({"path": "a.txt", "text": "unfini)", "Writing.");
    r.stop_reason = p == "anthropic" ? "max_tokens" : "length";
    f.server.push(r);
    auto out = f.send(hello());
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    BOOST_TEST(out.response.stop_reason == StopReason::max_tokens);
    BOOST_TEST(out.response.tool_calls().empty());
    BOOST_TEST(out.response.text() == "Writing.");
  });
}

BOOST_AUTO_TEST_CASE(unparseable_tool_arguments_are_an_invalid_json_error) {
  for_each_provider([&](ModelFixture& f, const std::string&) {
    f.server.push(Reply::call("c1", "write", R"({"foo": "bar", "baz": "qux": "quux"})"));
    auto out = f.send(hello());
    BOOST_REQUIRE(!out.ok());
    BOOST_TEST(model::to_string(out.error->kind) == "invalid_json");
    BOOST_TEST(out.error->message.find(R"({"foo": "bar", "baz": "qux": "quux"})") != std::string::npos);
    BOOST_TEST(out.error->attempts == 1);
  });
}

BOOST_AUTO_TEST_CASE(a_refusal_is_a_response_with_stop_reason_refusal_and_its_text) {
  for_each_provider([&](ModelFixture& f, const std::string&) {
    f.server.push(Reply::refuse("I'm sorry, but I can't assist with that."));
    auto out = f.send(hello());
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    BOOST_TEST(out.response.stop_reason == StopReason::refusal);
    BOOST_TEST(out.response.text() == "I'm sorry, but I can't assist with that.");
    BOOST_TEST(out.response.attempts == 1);  // an answer, not a fault to retry
  });
}

BOOST_AUTO_TEST_CASE(tool_arguments_nested_too_deep_are_an_invalid_json_error) {
  std::string deep = R"({"a": )" + std::string(600, '[') + std::string(600, ']') + "}";
  for_each_provider([&](ModelFixture& f, const std::string&) {
    f.server.push(Reply::call("c1", "write", deep));
    auto out = f.send(hello());
    BOOST_REQUIRE(!out.ok());
    BOOST_TEST(model::to_string(out.error->kind) == "invalid_json");
    BOOST_TEST(out.error->message.find("nests more than 512 levels") != std::string::npos, out.error->message);
  });
}

// ---- faults -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rate_limit_429_honours_retry_after_then_succeeds) {
  for_each_provider([&](ModelFixture& f, const std::string& p) {
    f.server.push(Reply::failing(429, slurp(streams() / (p + "-error-429.json")), "1"));
    f.server.push(Reply::say("after the wait"));
    std::vector<std::pair<std::string, long>> retries;
    model::Stream s;
    s.on_retry = [&](int, const model::ModelError& why, std::chrono::milliseconds delay) {
      retries.emplace_back(model::to_string(why.kind), delay.count());
    };
    auto start = std::chrono::steady_clock::now();
    auto out = f.send(hello(), std::move(s));
    auto waited = std::chrono::steady_clock::now() - start;
    BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
    BOOST_TEST(out.response.text() == "after the wait");
    BOOST_TEST(out.response.attempts == 2);
    BOOST_REQUIRE(retries.size() == 1u);
    BOOST_TEST(retries[0].first == "rate_limited");
    BOOST_TEST(retries[0].second == 1000);  // retry-after: 1, not the 5 ms backoff
    BOOST_TEST(waited >= std::chrono::milliseconds(900));
    BOOST_TEST(f.server.request_count() == 2u);
  });
}

BOOST_AUTO_TEST_CASE(overloaded_529_is_retried_with_backoff_then_reported) {
  ModelFixture f;
  auto o = f.options("anthropic");
  o.max_retries = 2;
  f.make("anthropic/test-model", o);
  std::string body = slurp(streams() / "anthropic-error-529.json");
  for (int i = 0; i < 3; ++i) f.server.push(Reply::failing(529, body));
  expect_failed(f.send(hello()), "overloaded", 529, 3, "Overloaded");
  BOOST_TEST(f.server.request_count() == 3u);
}

BOOST_AUTO_TEST_CASE(server_errors_are_retried_client_errors_are_not) {
  ModelFixture f;
  f.make("openai");
  for (int status : {500, 502, 503, 504}) f.server.push(Reply::failing(status, "{}"));
  f.server.push(Reply::say("fine"));
  auto out = f.send(hello());
  BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
  BOOST_TEST(out.response.attempts == 5);

  f.server.push(Reply::failing(401, R"({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}})"));
  expect_failed(f.send(hello()), "http_status", 401, 1, "Incorrect API key provided");
}

BOOST_AUTO_TEST_CASE(broken_streams_become_typed_errors) {
  using F = Reply::Fault;
  struct Case {
    F fault;
    const char* kind;
  } cases[] = {{F::truncate, "truncated_stream"}, {F::disconnect, "truncated_stream"},
               {F::invalid_json, "invalid_json"}, {F::error_event, "error_event"}};
  for (std::string p : kProviders) {
    for (const auto& c : cases) {
      BOOST_TEST_CONTEXT(p << " " << c.kind << " " << static_cast<int>(c.fault)) {
        ModelFixture f;
        auto o = f.options(p);
        o.max_retries = 1;
        f.make(p + "/test-model", o);
        Reply r = Reply::call("c1", "bash", R"({"command": "make test"})", "I will run the tests now.");
        r.fault = c.fault;
        f.server.set_default(r);
        auto out = f.send(hello());
        BOOST_REQUIRE(!out.ok());
        BOOST_TEST(model::to_string(out.error->kind) == c.kind);
        BOOST_TEST(!out.error->message.empty());
        // Garbage is not retried; a broken or overloaded stream is.
        BOOST_TEST(out.error->attempts == (c.fault == F::invalid_json ? 1 : 2));
        if (c.fault == F::error_event) BOOST_TEST(out.error->provider_type == "overloaded_error");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(an_error_event_mid_stream_is_retried_and_the_retry_succeeds) {
  ModelFixture f;
  f.make("anthropic");
  f.server.push(Reply::raw(slurp(streams() / "anthropic-error-overloaded.sse")));
  f.server.push(Reply::say("second time lucky"));
  int retries = 0;
  std::string live;
  model::Stream s;
  s.on_text = [&](std::string_view d) { live.append(d); };
  s.on_retry = [&](int, const model::ModelError&, std::chrono::milliseconds) {
    ++retries;
    live.clear();  // what was shown of the failed attempt is void
  };
  auto out = f.send(hello(), std::move(s));
  BOOST_REQUIRE_MESSAGE(out.ok(), why(out));
  BOOST_TEST(retries == 1);
  BOOST_TEST(live == "second time lucky");
  BOOST_TEST(out.response.text() == "second time lucky");
}

BOOST_AUTO_TEST_CASE(a_stalled_stream_hits_the_idle_timeout) {
  ModelFixture f;
  auto o = f.options("anthropic");
  o.idle_timeout = std::chrono::milliseconds(300);
  o.max_retries = 0;
  f.make("anthropic/test-model", o);
  Reply r = Reply::say("this stream will stall halfway through its text");
  r.fault = Reply::Fault::stall;
  f.server.push(r);
  std::string live;
  model::Stream s;
  s.on_text = [&](std::string_view d) { live.append(d); };
  auto out = f.send(hello(), std::move(s));
  BOOST_REQUIRE(!out.ok());
  BOOST_TEST(model::to_string(out.error->kind) == "idle_timeout");
  BOOST_TEST(!live.empty());  // the first half did arrive
}

BOOST_AUTO_TEST_CASE(a_slow_server_hits_the_request_timeout) {
  ModelFixture f;
  auto o = f.options("openai");
  o.request_timeout = std::chrono::milliseconds(300);
  f.make("openai/test-model", o);
  Reply r = Reply::say("too late");
  r.delay = std::chrono::milliseconds(3000);
  f.server.push(r);
  auto out = f.send(hello());
  BOOST_REQUIRE(!out.ok());
  BOOST_TEST(model::to_string(out.error->kind) == "timeout");
  BOOST_TEST(out.error->attempts == 1);
}

BOOST_AUTO_TEST_CASE(connection_refused_is_retried_then_a_connection_error) {
  ModelFixture f;
  auto o = f.options("anthropic");
  o.base_url = "http://127.0.0.1:1";
  o.max_retries = 2;
  f.make("anthropic/test-model", o);
  auto out = f.send(hello());
  BOOST_REQUIRE(!out.ok());
  BOOST_TEST(model::to_string(out.error->kind) == "connection");
  BOOST_TEST(out.error->attempts == 3);
  BOOST_TEST(out.error->message.find("127.0.0.1:1") != std::string::npos);
}

// ---- cancellation, concurrency, configuration ---------------------------

BOOST_AUTO_TEST_CASE(cancel_aborts_a_streaming_request) {
  ModelFixture f;
  f.make("anthropic");
  Reply r = Reply::say("a long answer that streams slowly, piece by piece, forever");
  r.event_delay = std::chrono::milliseconds(50);
  f.server.push(r);
  std::optional<model::Outcome> out;
  int after_cancel = 0;
  bool cancelled = false;
  model::RequestId id = 0;
  model::Stream s;
  s.on_text = [&](std::string_view) {
    if (cancelled) ++after_cancel;
    if (!cancelled) cancelled = f.client->cancel(id);  // from inside a callback
  };
  s.on_done = [&](model::Outcome o) { out = std::move(o); };
  id = f.client->send(hello(), std::move(s));
  f.run_until([&] { return out.has_value(); });
  BOOST_TEST(cancelled);
  BOOST_TEST(model::to_string(out->error->kind) == "cancelled");
  BOOST_TEST(after_cancel == 0);
  BOOST_TEST(!f.client->cancel(id));  // already finished
  BOOST_TEST(f.client->active() == 0u);

  // Cancelled before any byte arrived.
  Reply slow = Reply::say("never seen");
  slow.delay = std::chrono::milliseconds(2000);
  f.server.push(slow);
  std::optional<model::Outcome> out2;
  model::Stream s2;
  s2.on_done = [&](model::Outcome o) { out2 = std::move(o); };
  auto id2 = f.client->send(hello(), std::move(s2));
  BOOST_TEST(f.client->cancel(id2));
  BOOST_REQUIRE(out2.has_value());
  BOOST_TEST(model::to_string(out2->error->kind) == "cancelled");
}

BOOST_AUTO_TEST_CASE(fifty_requests_at_once_on_one_loop) {
  for_each_provider([&](ModelFixture& f, const std::string&) {
    Reply r = Reply::say("concurrent answer");
    r.delay = std::chrono::milliseconds(100);
    f.server.set_default(r);
    int ok = 0, done = 0;
    for (int i = 0; i < 50; ++i) {
      model::Stream s;
      s.on_done = [&](model::Outcome o) {
        ++done;
        if (o.ok() && o.response.text() == "concurrent answer") ++ok;
      };
      f.client->send(hello("request " + std::to_string(i)), std::move(s));
    }
    BOOST_TEST(f.client->active() == 50u);
    f.run_until([&] { return done == 50; });
    BOOST_TEST(ok == 50);
    BOOST_TEST(f.server.request_count() == 50u);
    BOOST_TEST(f.server.connections() > 1u);  // they were in flight together
  });
}

BOOST_AUTO_TEST_CASE(destroying_the_client_from_on_done_is_safe) {
  ModelFixture f;
  f.make("openai");
  Reply slow = Reply::say("slow");
  slow.delay = std::chrono::milliseconds(2000);
  f.server.push(Reply::say("first"));
  f.server.set_default(slow);
  bool done = false;
  bool other_called = false;
  model::Stream other;
  other.on_done = [&](model::Outcome) { other_called = true; };
  f.client->send(hello(), std::move(other));  // still in flight when the client dies
  model::Stream s;
  s.on_done = [&](model::Outcome o) {
    done = o.ok();
    f.client.reset();
  };
  f.client->send(hello(), std::move(s));
  f.run_until([&] { return f.client == nullptr; });
  BOOST_TEST((!other_called || done));
}

BOOST_AUTO_TEST_CASE(bad_specs_and_missing_keys_are_named) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  model::ClientOptions o;
  o.getenv = [](const std::string&) { return std::nullopt; };
  auto a = model::make_client(&loop, "anthropic/claude-x", o);
  BOOST_REQUIRE(!a.ok());
  BOOST_TEST(a.message().find("ANTHROPIC_API_KEY") != std::string::npos);
  auto b = model::make_client(&loop, "gemini/pro", o);
  BOOST_REQUIRE(!b.ok());
  BOOST_TEST(b.message().find("unknown provider 'gemini'") != std::string::npos);
  auto c = model::make_client(&loop, "openai/", o);
  BOOST_REQUIRE(!c.ok());
  auto d = model::make_client(&loop, "replay:/nonexistent/cassette.jsonl", o);
  BOOST_REQUIRE(!d.ok());
  BOOST_TEST(d.message().find("/nonexistent/cassette.jsonl") != std::string::npos);
  // A local OpenAI-compatible server needs no key.
  o.getenv = [](const std::string& n) -> std::optional<std::string> {
    if (n == "OPENAI_BASE_URL") return "http://127.0.0.1:11434/v1";
    return std::nullopt;
  };
  auto e = model::make_client(&loop, "openai/llama3", o);
  BOOST_TEST(e.ok());
  e = Error{"released"};
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
