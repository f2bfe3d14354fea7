// The provider-neutral pieces: names, JSON forms, response assembly, and the
// factory that turns a model spec into a client.
#include <cstdlib>

#include "model/cassette.h"
#include "model/client.h"
#include "model/wire.h"
#include "util/json_limits.h"

namespace hearth::model {

const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::end_turn: return "end_turn";
    case StopReason::tool_use: return "tool_use";
    case StopReason::max_tokens: return "max_tokens";
    case StopReason::stop_sequence: return "stop_sequence";
    case StopReason::refusal: return "refusal";
    case StopReason::other: return "other";
  }
  return "other";
}

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::http_status: return "http_status";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::overloaded: return "overloaded";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::idle_timeout: return "idle_timeout";
    case ErrorKind::truncated_stream: return "truncated_stream";
    case ErrorKind::invalid_json: return "invalid_json";
    case ErrorKind::error_event: return "error_event";
    case ErrorKind::connection: return "connection";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::replay_mismatch: return "replay_mismatch";
    case ErrorKind::config: return "config";
  }
  return "unknown";
}

Message user_text(std::string text) {
  Block b;
  b.text = std::move(text);
  return Message{Role::user, {std::move(b)}};
}

Block tool_result(std::string tool_use_id, std::string output, bool is_error) {
  Block b;
  b.type = Block::Type::tool_result;
  b.id = std::move(tool_use_id);
  b.text = std::move(output);
  b.is_error = is_error;
  return b;
}

std::vector<const Block*> Response::tool_calls() const {
  std::vector<const Block*> out;
  for (const auto& b : message.content) {
    if (b.type == Block::Type::tool_use) out.push_back(&b);
  }
  return out;
}

std::string Response::text() const {
  std::string out;
  for (const auto& b : message.content) {
    if (b.type == Block::Type::text) out += b.text;
  }
  return out;
}

std::optional<nlohmann::json> parse_json(std::string_view text, std::string* error) {
  return parse_untrusted_json(text, error);
}

std::optional<nlohmann::json> error_object(const std::string& body, ModelError& error) {
  auto j = parse_json(body, nullptr);
  if (j && j->is_object() && j->contains("error") && (*j)["error"].is_object()) return (*j)["error"];
  error.message = body.substr(0, 300);
  return std::nullopt;
}

// ---- Assembler ----------------------------------------------------------

void Assembler::text(std::string_view delta) {
  if (delta.empty()) return;
  auto& content = response.message.content;
  if (!in_text_ || content.empty() || content.back().type != Block::Type::text) {
    content.push_back(Block{});
    in_text_ = true;
  }
  content.back().text.append(delta);
  if (stream_ && stream_->on_text) stream_->on_text(delta);
}

size_t Assembler::tool_start(std::string id, std::string name) {
  in_text_ = false;
  Block b;
  b.type = Block::Type::tool_use;
  b.id = std::move(id);
  b.name = std::move(name);
  response.message.content.push_back(std::move(b));
  calls_.push_back(Call{response.message.content.size() - 1, {}, false});
  size_t index = calls_.size() - 1;
  const Block& added = response.message.content.back();
  if (stream_ && stream_->on_tool_start) stream_->on_tool_start(index, added.id, added.name);
  return index;
}

void Assembler::tool_delta(size_t index, std::string_view partial_json) {
  if (index >= calls_.size() || partial_json.empty()) return;
  calls_[index].args.append(partial_json);
  if (stream_ && stream_->on_tool_delta) stream_->on_tool_delta(index, partial_json);
}

void Assembler::tool_stop(size_t index) {
  if (index < calls_.size()) calls_[index].stopped = true;
}

std::optional<ModelError> Assembler::finish(bool require_stop) {
  auto& content = response.message.content;
  std::vector<bool> drop(content.size(), false);
  for (const Call& c : calls_) {
    Block& b = content[c.block];
    bool cut = response.stop_reason == StopReason::max_tokens;
    if (require_stop && !c.stopped) {
      if (cut) {
        drop[c.block] = true;
        continue;
      }
      return ModelError{ErrorKind::truncated_stream, 0, "",
                        "the stream ended inside the arguments of tool call '" + b.name + "'"};
    }
    std::string why;
    auto parsed = c.args.empty() ? std::optional(nlohmann::json::object()) : parse_json(c.args, &why);
    if (!parsed || !parsed->is_object()) {
      if (cut) {
        drop[c.block] = true;
        continue;
      }
      return ModelError{ErrorKind::invalid_json, 0, "",
                        "unable to parse the arguments of tool call '" + b.name + "' from the model (" +
                            (parsed ? std::string("not a JSON object") : why) + "): " + c.args};
    }
    b.input = std::move(*parsed);
  }
  std::vector<Block> kept;
  for (size_t i = 0; i < content.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(content[i]));
  }
  content = std::move(kept);
  return std::nullopt;
}

// ---- JSON forms ---------------------------------------------------------

namespace {

nlohmann::json block_json(const Block& b) {
  switch (b.type) {
    case Block::Type::text: return {{"type", "text"}, {"text", b.text}};
    case Block::Type::tool_use:
      return {{"type", "tool_use"}, {"id", b.id}, {"name", b.name}, {"input", b.input}};
    case Block::Type::tool_result: {
      nlohmann::json j = {{"type", "tool_result"}, {"tool_use_id", b.id}, {"content", b.text}};
      if (b.is_error) j["is_error"] = true;
      return j;
    }
  }
  return {};
}

StopReason stop_from_string(const std::string& s) {
  for (auto r : {StopReason::end_turn, StopReason::tool_use, StopReason::max_tokens, StopReason::stop_sequence,
                 StopReason::refusal}) {
    if (s == to_string(r)) return r;
  }
  return StopReason::other;
}

}  // namespace

nlohmann::json to_json(const Message& m) {
  nlohmann::json content = nlohmann::json::array();
  for (const auto& b : m.content) content.push_back(block_json(b));
  return {{"role", m.role == Role::user ? "user" : "assistant"}, {"content", std::move(content)}};
}

nlohmann::json to_json(const Request& r) {
  nlohmann::json msgs = nlohmann::json::array(), tools = nlohmann::json::array();
  for (const auto& m : r.messages) msgs.push_back(to_json(m));
  for (const auto& t : r.tools) {
    tools.push_back({{"name", t.name}, {"description", t.description}, {"input_schema", t.input_schema}});
  }
  return {{"model", r.model}, {"system", r.system}, {"max_tokens", r.max_tokens},
          {"tools", std::move(tools)}, {"messages", std::move(msgs)}};
}

nlohmann::json to_json(const Response& r) {
  return {{"id", r.id},
          {"model", r.model},
          {"content", to_json(r.message)["content"]},
          {"stop_reason", to_string(r.stop_reason)},
          {"stop_reason_raw", r.stop_reason_raw},
          {"usage",
           {{"input_tokens", r.usage.input_tokens},
            {"output_tokens", r.usage.output_tokens},
            {"cache_read_input_tokens", r.usage.cache_read_input_tokens},
            {"cache_creation_input_tokens", r.usage.cache_creation_input_tokens}}}};
}

Result<Message> message_from_json(const nlohmann::json& j) {
  try {
    Message m;
    m.role = j.at("role").get<std::string>() == "assistant" ? Role::assistant : Role::user;
    for (const auto& c : j.at("content")) {
      Block b;
      std::string type = c.at("type").get<std::string>();
      if (type == "text") {
        b.text = c.at("text").get<std::string>();
      } else if (type == "tool_use") {
        b.type = Block::Type::tool_use;
        b.id = c.at("id").get<std::string>();
        b.name = c.at("name").get<std::string>();
        b.input = c.value("input", nlohmann::json::object());
      } else if (type == "tool_result") {
        b.type = Block::Type::tool_result;
        b.id = c.at("tool_use_id").get<std::string>();
        b.text = c.value("content", "");
        b.is_error = c.value("is_error", false);
      } else {
        return Error{"unknown content block type '" + type + "'"};
      }
      m.content.push_back(std::move(b));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    return Error{std::string("malformed message: ") + e.what()};
  }
}

Result<Request> request_from_json(const nlohmann::json& j) {
  try {
    Request r;
    r.model = j.value("model", "");
    r.system = j.value("system", "");
    r.max_tokens = j.value("max_tokens", 8192);
    for (const auto& t : j.value("tools", nlohmann::json::array())) {
      r.tools.push_back(Tool{t.at("name").get<std::string>(), t.value("description", ""),
                             t.value("input_schema", nlohmann::json::object())});
    }
    for (const auto& m : j.at("messages")) {
      auto msg = message_from_json(m);
      if (!msg) return msg.error();
      r.messages.push_back(std::move(*msg));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error{std::string("malformed request: ") + e.what()};
  }
}

Result<Response> response_from_json(const nlohmann::json& j) {
  try {
    Response r;
    r.id = j.value("id", "");
    r.model = j.value("model", "");
    auto msg = message_from_json({{"role", "assistant"}, {"content", j.at("content")}});
    if (!msg) return msg.error();
    r.message = std::move(*msg);
    r.stop_reason = stop_from_string(j.value("stop_reason", "end_turn"));
    r.stop_reason_raw = j.value("stop_reason_raw", "");
    const auto& u = j.value("usage", nlohmann::json::object());
    r.usage.input_tokens = u.value("input_tokens", int64_t{0});
    r.usage.output_tokens = u.value("output_tokens", int64_t{0});
    r.usage.cache_read_input_tokens = u.value("cache_read_input_tokens", int64_t{0});
    r.usage.cache_creation_input_tokens = u.value("cache_creation_input_tokens", int64_t{0});
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error{std::string("malformed response: ") + e.what()};
  }
}

// ---- The factory --------------------------------------------------------

Result<std::unique_ptr<Client>> make_client(uv_loop_t* loop, const std::string& spec, ClientOptions options) {
  if (spec.starts_with("replay:")) {
    std::string path = spec.substr(7);
    if (path.empty()) return Error{"model '" + spec + "': replay needs a cassette path (replay:<file>)"};
    return make_replay_client(loop, spec, path, options.secrets, options.replay_root);
  }
  auto env = [&](const std::string& name) -> std::optional<std::string> {
    if (options.getenv) return options.getenv(name);
    const char* v = std::getenv(name.c_str());
    return v && *v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto slash = spec.find('/');
  std::string provider = slash == std::string::npos ? spec : spec.substr(0, slash);
  std::string model = slash == std::string::npos ? "" : spec.substr(slash + 1);
  if (provider != "anthropic" && provider != "openai") {
    return Error{"model '" + spec + "': unknown provider '" + provider +
                 "' (use anthropic/<model>, openai/<model> or replay:<cassette>)"};
  }
  if (model.empty()) return Error{"model '" + spec + "': no model name after '" + provider + "/'"};
  std::string upper = provider == "anthropic" ? "ANTHROPIC" : "OPENAI";
  std::string base = options.base_url;
  if (base.empty()) base = env(upper + "_BASE_URL").value_or("");
  std::string key = options.api_key;
  if (key.empty()) key = env(upper + "_API_KEY").value_or("");
  bool local = !base.empty();
  if (key.empty() && (provider == "anthropic" || !local)) {
    return Error{"model '" + spec + "': " + upper + "_API_KEY is not set"};
  }
  if (base.empty()) base = provider == "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
  while (base.ends_with('/')) base.pop_back();
  auto wire = provider == "anthropic" ? make_anthropic_wire(base, key, model) : make_openai_wire(base, key, model);
  std::string record = options.record_path;
  std::vector<std::string> secrets = options.secrets;
  if (!key.empty()) secrets.push_back(key);
  auto live = make_streaming_client(loop, spec, std::move(wire), std::move(options));
  if (record.empty()) return live;
  return make_recording_client(std::move(live), record, std::move(secrets));
}

}  // namespace hearth::model
