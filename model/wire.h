// Private to model/: what one provider's wire format supplies to the
// shared streaming client (streaming_client.cpp), and the assembly of a
// response from streamed deltas that both formats share.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "model/client.h"
#include "http/client.h"
#include "model/sse.h"

namespace hearth::model {

/// Builds the Response from deltas and forwards them to the Stream's
/// callbacks. Tool arguments are parsed once, in finish().
class Assembler {
 public:
  explicit Assembler(const Stream* stream) : stream_(stream) {}
  void text(std::string_view delta);
  /// Returns the tool call's index in this response.
  size_t tool_start(std::string id, std::string name);
  void tool_delta(size_t index, std::string_view partial_json);
  /// Marks a tool call's arguments as complete (Anthropic content_block_stop).
  void tool_stop(size_t index);
  /// Ends text accumulation into the current block (a new block begins).
  void end_text_block() { in_text_ = false; }
  /// Parses every tool call's arguments into the message. A call cut off by
  /// max_tokens (or incomplete when `require_stop`) is dropped; any other
  /// call with unparseable arguments is an invalid_json error.
  std::optional<ModelError> finish(bool require_stop);

  Response response;

 private:
  struct Call {
    size_t block;  // index into response.message.content
    std::string args;
    bool stopped = false;
  };
  const Stream* stream_;
  std::vector<Call> calls_;
  bool in_text_ = false;
};

/// One attempt's stream decoder.
class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Handles one SSE event; an error ends the attempt.
  virtual std::optional<ModelError> on_event(const sse::Event& event) = 0;
  /// The body ended (every complete event delivered): the assembled response,
  /// or why it is not complete.
  virtual std::optional<ModelError> finish() = 0;
  virtual Response& response() = 0;
};

/// A provider's request encoding and response decoding.
class Wire {
 public:
  virtual ~Wire() = default;
  /// The provider's name in error messages ("anthropic").
  virtual const char* name() const = 0;
  virtual http::ClientRequest build(const Request& request) const = 0;
  virtual std::unique_ptr<Decoder> decoder(const Stream* stream) const = 0;
  /// Fills provider_type and message from a non-2xx response body.
  virtual void parse_error(const std::string& body, ModelError& error) const = 0;
};

/// `model` is the default model name, `api_key` may be empty (openai with a
/// local base_url).
std::unique_ptr<Wire> make_anthropic_wire(std::string base_url, std::string api_key, std::string model);
std::unique_ptr<Wire> make_openai_wire(std::string base_url, std::string api_key, std::string model);

/// The shared client: retries, timeouts, cancellation (streaming_client.cpp).
std::unique_ptr<Client> make_streaming_client(uv_loop_t* loop, std::string spec,
                                              std::unique_ptr<Wire> wire, ClientOptions options);

/// Serialises without throwing: invalid UTF-8 (a tool's raw output) becomes U+FFFD.
inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// j[key] when it is a string, else "" (never throws).
inline std::string str_field(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

/// Parses a JSON text; nullopt (with `error` set) when it is not JSON.
std::optional<nlohmann::json> parse_json(std::string_view text, std::string* error);

/// For Wire::parse_error: the "error" object of an error response's body;
/// when the body has none (not JSON, a proxy's HTML page), nullopt, with
/// `error.message` set to the body's first 300 bytes.
std::optional<nlohmann::json> error_object(const std::string& body, ModelError& error);

}  // namespace hearth::model
