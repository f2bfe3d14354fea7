// A stand-in model server for tests: HTTP/1.1 on 127.0.0.1 (a free port),
// speaking the Anthropic Messages stream (POST /v1/messages) and the OpenAI
// Chat Completions stream (POST .../chat/completions), on its own thread
// and libuv loop. HTTP requests are parsed with http_parser.
//
// Each request takes the next scripted Reply (push()), or the one a
// responder picks from the request (set_responder()), or the default one.
// A Reply is either a turn to render in the request's wire format (text,
// tool calls, stop reason, usage), or a raw body (a recorded stream), or a
// status with a body; plus delays and faults.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::testing {

struct Reply {
  // -- a turn, rendered in the wire format of the request --
  std::string text;
  struct ToolCall {
    std::string id;
    std::string name;
    std::string arguments;  // JSON text, streamed in fragments
  };
  std::vector<ToolCall> tool_calls;
  std::string stop_reason;  // provider word; empty: tool_use/tool_calls or end_turn/stop
  /// A refusal instead of an answer: openai streams it as delta.refusal
  /// (content null, finish_reason "stop"); anthropic as the text with
  /// stop_reason "refusal".
  std::string refusal;
  int input_tokens = 12;
  int output_tokens = 7;

  // -- or a body sent as it is (status 200, text/event-stream) --
  std::optional<std::string> raw_body;

  // -- or an error status with this body --
  int status = 200;
  std::string status_body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers

  // -- timing and faults --
  std::chrono::milliseconds delay{0};        // before the status line
  std::chrono::milliseconds event_delay{0};  // between events (raw bodies: between chunks)
  size_t raw_chunk = 0;                      // raw bodies: split into chunks of this size
  enum class Fault {
    none,
    truncate,      // the body ends cleanly, but only its first half of events
    disconnect,    // the connection closes mid-body (chunked encoding unfinished)
    stall,         // the first events, then silence (the connection stays open)
    invalid_json,  // one event's data is not JSON
    error_event,   // an error event after the first events (overloaded_error)
  };
  Fault fault = Fault::none;

  static Reply say(std::string text) {
    Reply r;
    r.text = std::move(text);
    return r;
  }
  static Reply call(std::string id, std::string name, std::string arguments, std::string text = "") {
    Reply r;
    r.text = std::move(text);
    r.tool_calls.push_back({std::move(id), std::move(name), std::move(arguments)});
    return r;
  }
  static Reply failing(int status, std::string body, std::string retry_after = "") {
    Reply r;
    r.status = status;
    r.status_body = std::move(body);
    if (!retry_after.empty()) r.headers.emplace_back("retry-after", std::move(retry_after));
    return r;
  }
  static Reply refuse(std::string text) {
    Reply r;
    r.refusal = std::move(text);
    return r;
  }
  static Reply raw(std::string body) {
    Reply r;
    r.raw_body = std::move(body);
    return r;
  }
};

/// A request as the server received it.
struct ReceivedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class ModelServer {
 public:
  /// Listens at once; throws if it cannot.
  ModelServer();
  /// Stops the thread; open connections (stalled streams) are closed.
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  int port() const { return port_; }
  /// "http://127.0.0.1:<port>" — the Anthropic base URL; append "/v1" for OpenAI.
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void push(Reply reply);
  void set_default(Reply reply);
  /// Picks the reply from the request when no scripted one is left (before
  /// the default; nullopt: the default): concurrent conversations each get
  /// the reply that fits them. Called on the server's thread, under its lock.
  using Responder = std::function<std::optional<Reply>(const ReceivedRequest&)>;
  void set_responder(Responder responder);
  std::vector<ReceivedRequest> requests() const;
  size_t request_count() const;
  /// Connections accepted so far.
  size_t connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace hearth::testing
