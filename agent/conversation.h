// Private to the harness: the conversation of one agent attempt, its
// checkpoint form (a JSON value) and its opening (system prompt, first
// message). The state is documented for users in docs/skills.md#checkpoints:
//
//   {"hearth_agent_state": 1, "system": "...", "messages": [...provider-neutral
//    messages, model::to_json...], "turns": 3, "usage": {"input_tokens": ..,
//    "output_tokens": .., "cache_read_input_tokens": .., "cache_creation_input_tokens": ..},
//    "rejections": 1, "bash_cwd": "/workspace/src" | null, "result": <only once accepted>,
//    "messages_saved": 4}
// `messages_saved` counts the leading messages an earlier checkpoint (that
// returned ok) already held: an append-only store writes only the rest.
// Loading ignores it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/client.h"
#include "util/status.h"

namespace hearth::agent {

inline constexpr int kAgentStateVersion = 1;

struct Conversation {
  std::vector<model::Message> messages;
  nlohmann::json messages_json = nlohmann::json::array();  // the same, kept encoded for checkpoints
  int turns = 0;            // model responses received
  model::Usage usage;       // summed over turns
  int rejections = 0;       // results rejected so far
  size_t saved = 0;         // leading messages a checkpoint has already stored

  void append(model::Message m);
};

void add(model::Usage& total, const model::Usage& u);

/// Whether the last message is the assistant's and has tool calls: nothing
/// answers them (the engine stopped while they ran).
bool has_dangling_calls(const Conversation& c);

struct LoadedState {
  Conversation conv;
  std::string system;
  std::optional<std::string> bash_cwd;
  std::optional<nlohmann::json> result;
};

/// Reads a state; errors name the field and what is wrong with it.
Result<LoadedState> load_state(const nlohmann::json& state);

/// Builds the state and hands it to `checkpoint`; `conv.messages_json` is
/// lent to the state for the call, not copied.
Status save_state(Conversation& conv, const std::string& system, const std::optional<std::string>& bash_cwd,
                  const nlohmann::json* result, const std::function<Status(const nlohmann::json&)>& checkpoint);

}  // namespace hearth::agent
