// The conversation's checkpoint form and the opening of every conversation.
#include "agent/conversation.h"

#include "agent/harness.h"

namespace hearth::agent {

using nlohmann::json;

void Conversation::append(model::Message m) {
  messages_json.push_back(model::to_json(m));
  messages.push_back(std::move(m));
}

void add(model::Usage& total, const model::Usage& u) {
  total.input_tokens += u.input_tokens;
  total.output_tokens += u.output_tokens;
  total.cache_read_input_tokens += u.cache_read_input_tokens;
  total.cache_creation_input_tokens += u.cache_creation_input_tokens;
}

bool has_dangling_calls(const Conversation& c) {
  if (c.messages.empty() || c.messages.back().role != model::Role::assistant) return false;
  for (const auto& b : c.messages.back().content)
    if (b.type == model::Block::Type::tool_use) return true;
  return false;
}

namespace {

json usage_json(const model::Usage& u) {
  return {{"input_tokens", u.input_tokens},
          {"output_tokens", u.output_tokens},
          {"cache_read_input_tokens", u.cache_read_input_tokens},
          {"cache_creation_input_tokens", u.cache_creation_input_tokens}};
}

// A non-negative integer field; the error names it.
Result<int64_t> count(const json& state, const char* field) {
  auto it = state.find(field);
  if (it == state.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return Error{"field '" + std::string(field) + "' must be a non-negative integer"};
  }
  return it->get<int64_t>();
}

}  // namespace

Result<LoadedState> load_state(const json& state) {
  if (!state.is_object()) return Error{std::string("the state must be a JSON object, not ") + state.type_name()};
  auto version = state.find("hearth_agent_state");
  if (version == state.end() || *version != kAgentStateVersion) {
    return Error{"not an agent state of version " + std::to_string(kAgentStateVersion) +
                 " (field 'hearth_agent_state')"};
  }
  LoadedState out;
  auto system = state.find("system");
  if (system == state.end() || !system->is_string()) return Error{"field 'system' must be a string"};
  out.system = system->get<std::string>();
  auto messages = state.find("messages");
  if (messages == state.end() || !messages->is_array() || messages->empty()) {
    return Error{"field 'messages' must be a non-empty array"};
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    auto m = model::message_from_json((*messages)[i]);
    if (!m) return Error{"messages[" + std::to_string(i) + "]: " + m.message()};
    out.conv.append(std::move(*m));
  }
  if (out.conv.messages.front().role != model::Role::user) return Error{"messages[0] must be a user message"};
  auto turns = count(state, "turns");
  auto rejections = count(state, "rejections");
  if (!turns) return turns.error();
  if (!rejections) return rejections.error();
  out.conv.turns = static_cast<int>(*turns);
  out.conv.rejections = static_cast<int>(*rejections);
  auto usage = state.find("usage");
  if (usage == state.end() || !usage->is_object()) return Error{"field 'usage' must be an object"};
  for (auto [field, slot] : {std::pair{"input_tokens", &out.conv.usage.input_tokens},
                             std::pair{"output_tokens", &out.conv.usage.output_tokens},
                             std::pair{"cache_read_input_tokens", &out.conv.usage.cache_read_input_tokens},
                             std::pair{"cache_creation_input_tokens", &out.conv.usage.cache_creation_input_tokens}}) {
    auto n = count(*usage, field);
    if (!n) return Error{"usage: " + n.message()};
    *slot = *n;
  }
  if (auto cwd = state.find("bash_cwd"); cwd != state.end() && !cwd->is_null()) {
    if (!cwd->is_string()) return Error{"field 'bash_cwd' must be a string or null"};
    out.bash_cwd = cwd->get<std::string>();
  }
  if (auto result = state.find("result"); result != state.end()) out.result = *result;
  out.conv.saved = out.conv.messages.size();
  return out;
}

Status save_state(Conversation& conv, const std::string& system, const std::optional<std::string>& bash_cwd,
                  const json* result, const std::function<Status(const json&)>& checkpoint) {
  json state = {{"hearth_agent_state", kAgentStateVersion},
                {"system", system},
                {"turns", conv.turns},
                {"usage", usage_json(conv.usage)},
                {"rejections", conv.rejections},
                {"bash_cwd", bash_cwd ? json(*bash_cwd) : json()},
                {"messages_saved", conv.saved}};
  if (result) state["result"] = *result;
  state["messages"] = std::move(conv.messages_json);
  Status saved = checkpoint(state);
  conv.messages_json = std::move(state["messages"]);
  if (saved.ok()) conv.saved = conv.messages.size();
  return saved;
}

// ---- the opening ------------------------------------------------------------

std::string compose_system_prompt(const std::string& mount, bool has_result_schema,
                                  const std::optional<std::string>& agents_md, const std::string& instructions) {
  std::string s =
      "You are Hearth's agent, carrying out one step of a CI workflow. No one is watching and no one will answer "
      "questions: decide, act, and finish. The step's workspace is " + mount +
      "; the file tools take paths relative to it. Look before you change anything, change only what the task "
      "needs, and keep your replies short.\n";
  s += has_result_schema ? "When the work is done, call submit_result with the result; it is checked against the "
                           "step's result schema, and you are told what to fix when it does not match.\n"
                         : "When the work is done, reply with the result as your final message, without calling a "
                           "tool: that message is the step's result.\n";
  if (agents_md && !agents_md->empty()) {
    s += "\n<project_guidance source=\"AGENTS.md\">\n" + *agents_md;
    if (s.back() != '\n') s += '\n';
    s += "</project_guidance>\n";
  }
  if (!instructions.empty()) s += "\n" + instructions;
  return s;
}

std::string default_task(bool has_result_schema) {
  return has_result_schema ? "Carry out the task in your instructions, then call submit_result with the result."
                           : "Carry out the task in your instructions, then reply with the result.";
}

}  // namespace hearth::agent
