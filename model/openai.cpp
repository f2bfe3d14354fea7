// OpenAI Chat Completions (POST {base}/chat/completions, "stream": true,
// stream_options.include_usage) — also Ollama, vLLM, OpenRouter and other
// compatible servers.
//
// Stream: `data:` chunks of chat.completion.chunk; choices[0].delta carries
// content and tool_calls fragments keyed by their index (the first fragment
// of a call has its id and name); finish_reason ends the choice; a last
// chunk with empty choices carries usage; `data: [DONE]` ends the stream. A
// chunk with an "error" object is an error event. A refusal arrives as
// delta.refusal fragments (content null) and ends with finish_reason "stop";
// it becomes the reply's text with StopReason::refusal.
#include "model/wire.h"

namespace hearth::model {
namespace {

using nlohmann::json;

StopReason stop_reason(const std::string& s) {
  if (s == "stop") return StopReason::end_turn;
  if (s == "tool_calls" || s == "function_call") return StopReason::tool_use;
  if (s == "length") return StopReason::max_tokens;
  if (s == "content_filter") return StopReason::refusal;
  return StopReason::other;
}

class OpenAIDecoder final : public Decoder {
 public:
  explicit OpenAIDecoder(const Stream* stream) : asm_(stream) {}

  std::optional<ModelError> on_event(const sse::Event& e) override {
    if (e.data.starts_with("[DONE]")) {
      done_ = true;
      return std::nullopt;
    }
    if (e.data.empty()) return std::nullopt;
    std::string why;
    auto parsed = parse_json(e.data, &why);
    if (!parsed || !parsed->is_object()) {
      return ModelError{ErrorKind::invalid_json, 0, "",
                        "openai sent a chunk that is not a JSON object (" + why + "): " + e.data.substr(0, 200)};
    }
    const json& j = *parsed;
    try {
      if (auto it = j.find("error"); it != j.end() && !it->is_null() && *it != false) {
        ModelError me{ErrorKind::error_event, 0, "", ""};
        if (it->is_object()) {
          me.provider_type = it->contains("type") && (*it)["type"].is_string() ? (*it)["type"].get<std::string>() : "";
          std::string msg = it->contains("message") && (*it)["message"].is_string() ? (*it)["message"].get<std::string>() : "";
          me.message = "openai stream error: " + (msg.empty() ? "An error occurred during streaming" : msg);
        } else {
          me.message = "openai stream error: " + it->dump();
        }
        return me;
      }
      if (asm_.response.id.empty()) asm_.response.id = j.value("id", "");
      if (asm_.response.model.empty()) asm_.response.model = j.value("model", "");
      if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        Usage& usage = asm_.response.usage;
        usage.input_tokens = u->value("prompt_tokens", int64_t{0});
        usage.output_tokens = u->value("completion_tokens", int64_t{0});
        if (auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object()) {
          usage.cache_read_input_tokens = d->value("cached_tokens", int64_t{0});
        }
      }
      for (const json& choice : j.value("choices", json::array())) {
        if (choice.value("index", 0) != 0) continue;  // we ask for one choice
        const json& delta = choice.value("delta", json::object());
        if (auto c = delta.find("content"); c != delta.end() && c->is_string()) asm_.text(c->get<std::string>());
        // A refusal comes instead of content, with finish_reason "stop": it
        // is kept as the reply's text and makes the stop reason refusal.
        if (auto rf = delta.find("refusal"); rf != delta.end() && rf->is_string() && !rf->get_ref<const std::string&>().empty()) {
          refused_ = true;
          asm_.text(rf->get<std::string>());
        }
        if (auto tc = delta.find("tool_calls"); tc != delta.end() && tc->is_array()) {
          for (const json& call : *tc) {
            int index = call.value("index", 0);
            const json& fn = call.value("function", json::object());
            auto known = calls_.find(index);
            if (known == calls_.end()) {
              std::string name = fn.contains("name") && fn["name"].is_string() ? fn["name"].get<std::string>() : "";
              std::string id = call.contains("id") && call["id"].is_string() ? call["id"].get<std::string>() : "";
              known = calls_.emplace(index, asm_.tool_start(id, name)).first;
            }
            if (auto a = fn.find("arguments"); a != fn.end() && a->is_string()) {
              asm_.tool_delta(known->second, a->get<std::string>());
            }
          }
        }
        if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) {
          asm_.response.stop_reason_raw = f->get<std::string>();
          asm_.response.stop_reason = stop_reason(asm_.response.stop_reason_raw);
        }
      }
    } catch (const json::exception& ex) {
      return ModelError{ErrorKind::invalid_json, 0, "", std::string("openai stream: malformed chunk (") + ex.what() + ")"};
    }
    return std::nullopt;
  }

  std::optional<ModelError> finish() override {
    if (!done_) {
      return ModelError{ErrorKind::truncated_stream, 0, "",
                        "the openai stream ended without data: [DONE] (the response is incomplete)"};
    }
    if (asm_.response.stop_reason_raw.empty()) {
      return ModelError{ErrorKind::truncated_stream, 0, "", "the openai stream ended without a finish_reason"};
    }
    if (refused_) asm_.response.stop_reason = StopReason::refusal;
    return asm_.finish(/*require_stop=*/false);
  }

  Response& response() override { return asm_.response; }

 private:
  Assembler asm_;
  std::map<int, size_t> calls_;  // the stream's tool_calls index -> ours
  bool done_ = false;
  bool refused_ = false;  // a delta carried `refusal`
};

class OpenAIWire final : public Wire {
 public:
  OpenAIWire(std::string base, std::string key, std::string model)
      : base_(std::move(base)), key_(std::move(key)), model_(std::move(model)) {}

  const char* name() const override { return "openai"; }

  http::ClientRequest build(const Request& r) const override {
    json msgs = json::array();
    if (!r.system.empty()) msgs.push_back({{"role", "system"}, {"content", r.system}});
    for (const auto& m : r.messages) {
      if (m.role == Role::assistant) {
        json msg = {{"role", "assistant"}};
        std::string text;
        json calls = json::array();
        for (const auto& b : m.content) {
          if (b.type == Block::Type::text) text += b.text;
          if (b.type == Block::Type::tool_use) {
            calls.push_back({{"id", b.id}, {"type", "function"},
                             {"function", {{"name", b.name}, {"arguments", dump(b.input.is_null() ? json::object() : b.input)}}}});
          }
        }
        msg["content"] = text.empty() ? json(nullptr) : json(text);
        if (!calls.empty()) msg["tool_calls"] = std::move(calls);
        msgs.push_back(std::move(msg));
        continue;
      }
      // A user message: tool results become role "tool" messages (first, in
      // order), the rest one user message.
      std::string text;
      for (const auto& b : m.content) {
        if (b.type == Block::Type::tool_result) {
          msgs.push_back({{"role", "tool"}, {"tool_call_id", b.id},
                          {"content", b.is_error ? "Error: " + b.text : b.text}});
        } else if (b.type == Block::Type::text) {
          text += text.empty() ? b.text : "\n\n" + b.text;
        }
      }
      if (!text.empty()) msgs.push_back({{"role", "user"}, {"content", text}});
    }
    json body = {{"model", r.model.empty() ? model_ : r.model},
                 {"messages", std::move(msgs)},
                 {"max_tokens", r.max_tokens},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (!r.tools.empty()) {
      json tools = json::array();
      for (const auto& t : r.tools) {
        tools.push_back({{"type", "function"},
                         {"function", {{"name", t.name}, {"description", t.description}, {"parameters", t.input_schema}}}});
      }
      body["tools"] = std::move(tools);
    }
    http::ClientRequest h;
    h.url = base_ + "/chat/completions";
    h.headers = {{"content-type", "application/json"}, {"accept", "text/event-stream"}};
    if (!key_.empty()) h.headers.emplace_back("authorization", "Bearer " + key_);
    h.body = dump(body);
    return h;
  }

  std::unique_ptr<Decoder> decoder(const Stream* stream) const override {
    return std::make_unique<OpenAIDecoder>(stream);
  }

  void parse_error(const std::string& body, ModelError& e) const override {
    auto err = error_object(body, e);
    if (!err) return;
    e.provider_type = str_field(*err, "code").empty() ? str_field(*err, "type") : str_field(*err, "code");
    e.message = str_field(*err, "message");
  }

 private:
  std::string base_, key_, model_;
};

}  // namespace

std::unique_ptr<Wire> make_openai_wire(std::string base_url, std::string api_key, std::string model) {
  return std::make_unique<OpenAIWire>(std::move(base_url), std::move(api_key), std::move(model));
}

}  // namespace hearth::model
