// The agent harness against the stand-in model server: a workspace folder,
// a host bash session in it, and every callback recorded.
#pragma once

#include <boost/test/unit_test.hpp>

#include "agent/harness.h"
#include "agent/local_bash.h"
#include "tests/engine/fixture.h"
#include "tests/model/model_fixture.h"

namespace hearth::testing {

/// A tool result as the server received it, in either wire format.
struct SeenResult {
  std::string id;
  std::string text;
  bool is_error = false;
};

/// The tool results that end request `r` (the answers to the last turn).
inline std::vector<SeenResult> last_tool_results(const ReceivedRequest& r) {
  auto body = r.json();
  std::vector<SeenResult> out;
  const auto& msgs = body["messages"];
  if (r.path.find("/chat/completions") != std::string::npos) {
    size_t i = msgs.size();
    while (i > 0 && msgs[i - 1]["role"] == "tool") --i;
    for (; i < msgs.size(); ++i) {
      std::string text = msgs[i]["content"];
      bool err = text.rfind("Error: ", 0) == 0;
      out.push_back({msgs[i]["tool_call_id"], err ? text.substr(7) : text, err});
    }
    return out;
  }
  for (const auto& b : msgs.back()["content"]) {
    if (b["type"] == "tool_result") out.push_back({b["tool_use_id"], b["content"], b.value("is_error", false)});
  }
  return out;
}

/// The system prompt and the tool names of request `r`, in either wire format.
inline std::string system_of(const ReceivedRequest& r) {
  auto body = r.json();
  if (body.contains("system")) return body["system"];
  return body["messages"][0]["role"] == "system" ? body["messages"][0]["content"].get<std::string>() : "";
}
inline std::vector<std::string> tool_names_of(const ReceivedRequest& r) {
  std::vector<std::string> names;
  auto body = r.json();
  for (const auto& t : body["tools"]) names.push_back(t.contains("function") ? t["function"]["name"] : t["name"]);
  return names;
}

struct HarnessFixture : ModelFixture {
  TempDir dir;
  std::string ws;
  std::unique_ptr<agent::LocalBashSession> bash;

  std::vector<nlohmann::json> checkpoints;
  std::vector<agent::ToolCallEvent> calls;
  std::vector<agent::RejectionEvent> rejections;
  std::vector<agent::TurnEvent> turns;
  std::vector<int> turns_started;
  std::optional<agent::AgentOutcome> outcome;
  /// Overrides what checkpoint returns (after the state is recorded).
  std::function<Status(const nlohmann::json&)> checkpoint_result;
  std::function<std::string(std::string)> redact;

  HarnessFixture() : ws(dir.str()) { bash = std::make_unique<agent::LocalBashSession>(&loop, ws); }

  agent::AgentSpec spec(const std::string& provider) {
    agent::AgentSpec s;
    s.model = provider + "/test-model";
    s.client_options = options(provider);
    s.instructions = "Triage the notes in notes.txt.";
    s.bash = bash.get();
    s.workspace = ws;
    return s;
  }

  agent::HarnessCallbacks callbacks() {
    agent::HarnessCallbacks cb;
    cb.redact = redact;
    cb.checkpoint = [this](const nlohmann::json& state) -> Status {
      checkpoints.push_back(state);
      return checkpoint_result ? checkpoint_result(state) : Status{};
    };
    cb.on_turn_started = [this](int t) { turns_started.push_back(t); };
    cb.on_turn_finished = [this](const agent::TurnEvent& e) { turns.push_back(e); };
    cb.on_tool_call = [this](const agent::ToolCallEvent& e) { calls.push_back(e); };
    cb.on_result_rejected = [this](const agent::RejectionEvent& e) { rejections.push_back(e); };
    cb.on_done = [this](const agent::AgentOutcome& o) {
      BOOST_TEST(!outcome.has_value(), "on_done fired twice");
      outcome = o;
    };
    return cb;
  }

  std::unique_ptr<agent::Harness> make(agent::AgentSpec s) {
    auto h = agent::Harness::create(&loop, std::move(s), callbacks());
    BOOST_REQUIRE_MESSAGE(h.ok(), (h.ok() ? std::string() : h.message()));
    return std::move(*h);
  }

  /// Starts (or resumes from `state`) and runs the loop until on_done.
  agent::AgentOutcome run(agent::Harness& h, const std::optional<nlohmann::json>& state = std::nullopt) {
    outcome.reset();
    Status s = state ? h.resume(*state) : h.start();
    BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? std::string() : s.message()));
    run_until([&] { return outcome.has_value(); });
    return *outcome;
  }
};

}  // namespace hearth::testing

namespace hearth::agent {
inline std::ostream& operator<<(std::ostream& os, Failure f) { return os << to_string(f); }
}  // namespace hearth::agent
