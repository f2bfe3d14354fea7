// Model clients: one provider-neutral interface to the LLM providers.
//
// The agent harness speaks only this file. A Client sends a Request (system
// prompt, messages, tool definitions) and streams back a Response (the
// assistant's text and tool calls, the stop reason, token usage), on the
// engine's libuv loop, without threads or blocking.
//
//   auto client = model::make_client(loop, "anthropic/claude-sonnet-4-6", {});
//   if (!client) -> client.message() names the cause (unknown provider, no API key…)
//   model::Request req{.system = "...", .messages = {model::user_text("hi")}, .tools = {...}};
//   model::Stream s;
//   s.on_text = [](std::string_view delta) { ... };
//   s.on_done = [](model::Outcome out) {
//     if (!out.ok()) -> out.error->kind, out.error->message
//     else -> out.response.message (append to the conversation), out.response.tool_calls()
//   };
//   model::RequestId id = (*client)->send(std::move(req), std::move(s));
//   (*client)->cancel(id);     // on_done gets ErrorKind::cancelled
//
// Providers (model spec → Client): "anthropic/<model>" (Messages API),
// "openai/<model>" (Chat Completions; Ollama, vLLM, OpenRouter via
// base_url), "replay:<cassette>" (a recorded session, see cassette.h).
// Retries with backoff on 429/5xx/529 and connection errors, the per-request
// and idle-stream timeouts happen inside send(): on_done sees the final
// outcome only. See docs/models.md.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace hearth::model {

// ---- The request --------------------------------------------------------

/// One piece of a message. Which fields are meaningful depends on `type`.
struct Block {
  enum class Type { text, tool_use, tool_result };
  Type type = Type::text;
  std::string text;         // text: the text; tool_result: the tool's output
  std::string id;           // tool_use: the call's id; tool_result: the id it answers
  std::string name;         // tool_use: the tool's name
  nlohmann::json input;     // tool_use: the arguments (a JSON object)
  bool is_error = false;    // tool_result: the tool failed
};

enum class Role { user, assistant };

/// A turn of the conversation. Tool results go in a user message, in the
/// order of the tool calls they answer.
struct Message {
  Role role = Role::user;
  std::vector<Block> content;
};

/// A tool the model may call. `input_schema` is a JSON Schema (an object
/// schema) for its arguments.
struct Tool {
  std::string name;
  std::string description;
  nlohmann::json input_schema = nlohmann::json::object();
};

struct Request {
  std::string model;              // the provider's model name; empty: the client's model
  std::string system;             // the system prompt; may be empty
  std::vector<Message> messages;  // starts with a user message
  std::vector<Tool> tools;
  int max_tokens = 8192;
};

/// Conveniences for building messages.
Message user_text(std::string text);
Block tool_result(std::string tool_use_id, std::string output, bool is_error = false);

// ---- The response -------------------------------------------------------

enum class StopReason {
  end_turn,       // the model finished its answer
  tool_use,       // the model wants tool calls run (see Response::tool_calls)
  max_tokens,     // cut off by max_tokens: an unfinished tool call is dropped
  stop_sequence,
  refusal,        // the provider refused to continue
  other,          // anything else; see Response::stop_reason_raw
};
const char* to_string(StopReason r);

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_input_tokens = 0;
  int64_t cache_creation_input_tokens = 0;
};

struct Response {
  std::string id;                 // the provider's message id
  std::string model;              // the model that answered
  /// The assistant message: text blocks and complete tool_use blocks, ready
  /// to append to Request::messages for the next turn. A tool call whose
  /// arguments were cut off (max_tokens) is not included.
  Message message{Role::assistant, {}};
  StopReason stop_reason = StopReason::end_turn;
  std::string stop_reason_raw;    // the provider's own word ("tool_calls", "length"…)
  Usage usage;
  int attempts = 1;               // HTTP attempts made (1 + retries)

  /// The tool_use blocks of `message`, in order.
  std::vector<const Block*> tool_calls() const;
  /// All text blocks concatenated.
  std::string text() const;
};

// ---- Errors -------------------------------------------------------------

enum class ErrorKind {
  http_status,       // a non-2xx status not covered below (400, 401, 404…)
  rate_limited,      // 429 after the last retry
  overloaded,        // 529 / overloaded_error after the last retry
  timeout,           // the per-request timeout elapsed
  idle_timeout,      // no bytes arrived for the idle-stream timeout
  truncated_stream,  // the stream ended before the message was complete
  invalid_json,      // a stream event or tool-call arguments were not valid JSON
  error_event,       // the provider sent an error inside a 200 stream
  connection,        // connect/TLS/transport failure after the last retry
  cancelled,         // cancel() or client shutdown
  replay_mismatch,   // replay: the request does not fit the cassette
  config,            // a bad model spec, a missing API key, an unwritable cassette
};
const char* to_string(ErrorKind k);

struct ModelError {
  ErrorKind kind = ErrorKind::http_status;
  int http_status = 0;        // when the error came with an HTTP status
  std::string provider_type;  // the provider's error type ("overloaded_error"…), if any
  std::string message;        // for a user: what happened, with the provider's words
  int attempts = 1;
};

/// The end of a request: an error, or the complete response. When an error
/// ends a stream, `response` holds what had arrived (for diagnostics only).
struct Outcome {
  std::optional<ModelError> error;
  Response response;
  bool ok() const { return !error.has_value(); }
};

// ---- Streaming callbacks ------------------------------------------------

/// Callbacks for one request, all called on the loop thread. The deltas are
/// for live display; Outcome::response holds the assembled result. A
/// callback may cancel() any request and send() new ones; only on_done may
/// destroy the client.
struct Stream {
  std::function<void(std::string_view text)> on_text;
  /// A tool call started: its index among this response's tool calls, id, name.
  std::function<void(size_t index, const std::string& id, const std::string& name)> on_tool_start;
  /// A fragment of a tool call's JSON arguments, as streamed.
  std::function<void(size_t index, std::string_view partial_json)> on_tool_delta;
  /// An attempt failed and another follows after `delay`: whatever deltas
  /// this request delivered so far are void; the stream starts again.
  std::function<void(int failed_attempt, const ModelError& why, std::chrono::milliseconds delay)> on_retry;
  /// Exactly once per send(), never from inside send() itself.
  std::function<void(Outcome)> on_done;
};

using RequestId = uint64_t;

// ---- Clients ------------------------------------------------------------

struct ClientOptions {
  /// Overrides the provider's base URL (ANTHROPIC_BASE_URL / OPENAI_BASE_URL,
  /// then the public endpoint). For openai: "http://localhost:11434/v1" (Ollama).
  std::string base_url;
  /// Overrides the API key from the environment. Optional for openai when
  /// base_url is set (local servers need none).
  std::string api_key;
  std::chrono::milliseconds request_timeout{10 * 60 * 1000};  // one attempt, connect to last byte
  std::chrono::milliseconds idle_timeout{90 * 1000};          // no byte received for this long
  int max_retries = 4;                                        // after the first attempt
  std::chrono::milliseconds backoff_base{1000};               // 1 s, 2 s, 4 s… ±25 % jitter
  std::chrono::milliseconds backoff_max{60 * 1000};           // also caps retry-after
  /// record mode: write every exchange to this cassette (cassette.h).
  std::string record_path;
  /// replay: the directory a relative cassette path is read beneath (the
  /// repository, for a cassette the workflow names); empty: as given.
  std::string replay_root;
  /// Values to redact from cassettes besides API keys (e.g. the step's secrets).
  std::vector<std::string> secrets;
  /// Environment lookup (tests inject one); null: getenv.
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

/// A model provider on one libuv loop. Not thread-safe: use from the loop
/// thread. Destroying a client cancels its requests without calling their
/// on_done; its libuv handles close on the loop afterwards (run the loop to
/// let them close before uv_loop_close).
class Client {
 public:
  virtual ~Client() = default;
  /// Starts a request. on_done fires exactly once, later, on the loop.
  virtual RequestId send(Request request, Stream stream) = 0;
  /// Aborts a request: its on_done fires at once with ErrorKind::cancelled
  /// and no other callback of it fires afterwards. Safe from inside any of
  /// its callbacks. Returns false if the request already finished.
  virtual bool cancel(RequestId id) = 0;
  /// The model spec this client was made from ("anthropic/claude-…").
  virtual const std::string& spec() const = 0;
  /// Requests in flight.
  virtual size_t active() const = 0;
};

/// Makes a client from a model spec: "anthropic/<model>", "openai/<model>"
/// or "replay:<cassette path>". With options.record_path set, a live client
/// records its exchanges there. Errors name the spec and the cause (unknown
/// provider, missing API key, unreadable cassette).
Result<std::unique_ptr<Client>> make_client(uv_loop_t* loop, const std::string& spec,
                                            ClientOptions options = {});

// ---- JSON forms (cassettes, checkpoints) --------------------------------

/// The provider-neutral JSON form of requests and responses: used by
/// cassettes and suitable for checkpointing a conversation.
nlohmann::json to_json(const Message& m);
nlohmann::json to_json(const Request& r);
nlohmann::json to_json(const Response& r);
Result<Message> message_from_json(const nlohmann::json& j);
Result<Request> request_from_json(const nlohmann::json& j);
Result<Response> response_from_json(const nlohmann::json& j);

}  // namespace hearth::model
