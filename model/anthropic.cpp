// The Anthropic Messages API (POST /v1/messages, "stream": true).
//
// Stream: message_start (id, model, input usage), then per content block
// content_block_start / content_block_delta (text_delta, input_json_delta)
// / content_block_stop, then message_delta (stop_reason, output usage) and
// message_stop. `ping` keeps the connection alive; `error` ends the stream.
// Block types this interface does not carry (thinking, server tools…) are
// skipped.
#include "model/wire.h"

namespace hearth::model {
namespace {

using nlohmann::json;

json encode_block(const Block& b) {
  switch (b.type) {
    case Block::Type::text: return {{"type", "text"}, {"text", b.text}};
    case Block::Type::tool_use:
      return {{"type", "tool_use"}, {"id", b.id}, {"name", b.name},
              {"input", b.input.is_null() ? json::object() : b.input}};
    case Block::Type::tool_result: {
      json j = {{"type", "tool_result"}, {"tool_use_id", b.id}, {"content", b.text}};
      if (b.is_error) j["is_error"] = true;
      return j;
    }
  }
  return {};
}

StopReason stop_reason(const std::string& s) {
  if (s == "end_turn") return StopReason::end_turn;
  if (s == "tool_use") return StopReason::tool_use;
  if (s == "max_tokens") return StopReason::max_tokens;
  if (s == "stop_sequence") return StopReason::stop_sequence;
  if (s == "refusal") return StopReason::refusal;
  return StopReason::other;
}

void read_usage(const json& u, Usage& usage) {
  auto take = [&](const char* key, int64_t& field) {
    if (auto it = u.find(key); it != u.end() && it->is_number_integer()) field = it->get<int64_t>();
  };
  take("input_tokens", usage.input_tokens);
  take("output_tokens", usage.output_tokens);
  take("cache_read_input_tokens", usage.cache_read_input_tokens);
  take("cache_creation_input_tokens", usage.cache_creation_input_tokens);
}

class AnthropicDecoder final : public Decoder {
 public:
  explicit AnthropicDecoder(const Stream* stream) : asm_(stream) {}

  std::optional<ModelError> on_event(const sse::Event& e) override {
    if (e.event == "ping") return std::nullopt;
    std::string why;
    auto parsed = parse_json(e.data, &why);
    if (!parsed || !parsed->is_object()) {
      return ModelError{ErrorKind::invalid_json, 0, "",
                        "anthropic sent an event that is not a JSON object (" + why + "): " + e.data.substr(0, 200)};
    }
    const json& j = *parsed;
    std::string type = str_field(j, "type");
    if (type.empty()) type = e.event.value_or("");
    try {
      if (type == "error" || e.event == "error") {
        const json& err = j.contains("error") ? j["error"] : j;
        ModelError me{ErrorKind::error_event, 0, str_field(err, "type"), ""};
        me.message = "anthropic stream error " + me.provider_type + ": " + str_field(err, "message");
        return me;
      }
      if (type == "message_start") {
        const json& m = j.at("message");
        asm_.response.id = m.value("id", "");
        asm_.response.model = m.value("model", "");
        if (m.contains("usage")) read_usage(m["usage"], asm_.response.usage);
      } else if (type == "content_block_start") {
        size_t index = j.at("index").get<size_t>();
        const json& block = j.at("content_block");
        std::string kind = block.value("type", "");
        asm_.end_text_block();
        if (kind == "text") {
          blocks_[index] = Kind{Kind::text, 0};
          asm_.text(block.value("text", ""));
        } else if (kind == "tool_use") {
          size_t call = asm_.tool_start(block.value("id", ""), block.value("name", ""));
          blocks_[index] = Kind{Kind::tool, call};
        } else {
          blocks_[index] = Kind{Kind::skipped, 0};
        }
      } else if (type == "content_block_delta") {
        auto it = blocks_.find(j.at("index").get<size_t>());
        if (it == blocks_.end()) return protocol("a delta for a block that never started");
        const json& d = j.at("delta");
        std::string kind = d.value("type", "");
        if (it->second.kind == Kind::text && kind == "text_delta") {
          asm_.text(d.at("text").get<std::string>());
        } else if (it->second.kind == Kind::tool && kind == "input_json_delta") {
          asm_.tool_delta(it->second.call, d.at("partial_json").get<std::string>());
        }
      } else if (type == "content_block_stop") {
        auto it = blocks_.find(j.at("index").get<size_t>());
        if (it != blocks_.end() && it->second.kind == Kind::tool) asm_.tool_stop(it->second.call);
        asm_.end_text_block();
      } else if (type == "message_delta") {
        const json& d = j.value("delta", json::object());
        if (d.contains("stop_reason") && d["stop_reason"].is_string()) {
          asm_.response.stop_reason_raw = d["stop_reason"].get<std::string>();
          asm_.response.stop_reason = stop_reason(asm_.response.stop_reason_raw);
        }
        if (j.contains("usage")) read_usage(j["usage"], asm_.response.usage);
      } else if (type == "message_stop") {
        stopped_ = true;
      }
    } catch (const json::exception& ex) {
      return protocol(std::string("malformed ") + type + " event (" + ex.what() + ")");
    }
    return std::nullopt;
  }

  std::optional<ModelError> finish() override {
    if (!stopped_) {
      return ModelError{ErrorKind::truncated_stream, 0, "",
                        "the anthropic stream ended without message_stop (the response is incomplete)"};
    }
    return asm_.finish(/*require_stop=*/true);
  }

  Response& response() override { return asm_.response; }

 private:
  struct Kind {
    enum { text, tool, skipped } kind;
    size_t call;
  };
  static ModelError protocol(const std::string& what) {
    return ModelError{ErrorKind::invalid_json, 0, "", "anthropic stream: " + what};
  }
  Assembler asm_;
  std::map<size_t, Kind> blocks_;
  bool stopped_ = false;
};

class AnthropicWire final : public Wire {
 public:
  AnthropicWire(std::string base, std::string key, std::string model)
      : base_(std::move(base)), key_(std::move(key)), model_(std::move(model)) {}

  const char* name() const override { return "anthropic"; }

  http::ClientRequest build(const Request& r) const override {
    json body = {{"model", r.model.empty() ? model_ : r.model}, {"max_tokens", r.max_tokens}, {"stream", true}};
    if (!r.system.empty()) body["system"] = r.system;
    json msgs = json::array();
    for (const auto& m : r.messages) {
      json content = json::array();
      for (const auto& b : m.content) content.push_back(encode_block(b));
      msgs.push_back({{"role", m.role == Role::user ? "user" : "assistant"}, {"content", std::move(content)}});
    }
    body["messages"] = std::move(msgs);
    if (!r.tools.empty()) {
      json tools = json::array();
      for (const auto& t : r.tools) {
        tools.push_back({{"name", t.name}, {"description", t.description}, {"input_schema", t.input_schema}});
      }
      body["tools"] = std::move(tools);
    }
    http::ClientRequest h;
    h.url = base_ + "/v1/messages";
    h.headers = {{"content-type", "application/json"},
                 {"accept", "text/event-stream"},
                 {"anthropic-version", "2023-06-01"},
                 {"x-api-key", key_}};
    h.body = dump(body);
    return h;
  }

  std::unique_ptr<Decoder> decoder(const Stream* stream) const override {
    return std::make_unique<AnthropicDecoder>(stream);
  }

  void parse_error(const std::string& body, ModelError& e) const override {
    auto err = error_object(body, e);
    if (!err) return;
    e.provider_type = str_field(*err, "type");
    e.message = e.provider_type + ": " + str_field(*err, "message");
  }

 private:
  std::string base_, key_, model_;
};

}  // namespace

std::unique_ptr<Wire> make_anthropic_wire(std::string base_url, std::string api_key, std::string model) {
  return std::make_unique<AnthropicWire>(std::move(base_url), std::move(api_key), std::move(model));
}

}  // namespace hearth::model
