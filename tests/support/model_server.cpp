#include "tests/support/model_server.h"

#include <http_parser.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <set>
#include <stdexcept>

#include "util/sigpipe.h"

namespace hearth::testing {

using nlohmann::json;

namespace {

std::string sse(const std::string& event, const json& data) {
  return "event: " + event + "\ndata: " + data.dump() + "\n\n";
}

/// Splits `s` into pieces of at most `n` bytes.
std::vector<std::string> pieces(const std::string& s, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += n) out.push_back(s.substr(i, n));
  return out;
}

std::vector<std::string> anthropic_events(const Reply& r) {
  std::vector<std::string> ev;
  ev.push_back(sse("message_start", {{"type", "message_start"},
                                     {"message", {{"id", "msg_stand_in"}, {"type", "message"}, {"role", "assistant"},
                                                  {"model", "stand-in"}, {"content", json::array()},
                                                  {"stop_reason", nullptr}, {"stop_sequence", nullptr},
                                                  {"usage", {{"input_tokens", r.input_tokens}, {"output_tokens", 1}}}}}}));
  int index = 0;
  const std::string& text = r.refusal.empty() ? r.text : r.refusal;
  if (!text.empty()) {
    ev.push_back(sse("content_block_start", {{"type", "content_block_start"}, {"index", index},
                                             {"content_block", {{"type", "text"}, {"text", ""}}}}));
    ev.push_back("event: ping\ndata: {\"type\": \"ping\"}\n\n");
    for (const auto& p : pieces(text, 8)) {
      ev.push_back(sse("content_block_delta", {{"type", "content_block_delta"}, {"index", index},
                                               {"delta", {{"type", "text_delta"}, {"text", p}}}}));
    }
    ev.push_back(sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
    ++index;
  }
  for (const auto& c : r.tool_calls) {
    ev.push_back(sse("content_block_start",
                     {{"type", "content_block_start"}, {"index", index},
                      {"content_block", {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", json::object()}}}}));
    for (const auto& p : pieces(c.arguments, 5)) {
      ev.push_back(sse("content_block_delta", {{"type", "content_block_delta"}, {"index", index},
                                               {"delta", {{"type", "input_json_delta"}, {"partial_json", p}}}}));
    }
    ev.push_back(sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
    ++index;
  }
  std::string stop = !r.refusal.empty()     ? "refusal"
                     : !r.stop_reason.empty() ? r.stop_reason
                     : r.tool_calls.empty()   ? "end_turn"
                                              : "tool_use";
  ev.push_back(sse("message_delta", {{"type", "message_delta"},
                                     {"delta", {{"stop_reason", stop}, {"stop_sequence", nullptr}}},
                                     {"usage", {{"output_tokens", r.output_tokens}}}}));
  ev.push_back(sse("message_stop", {{"type", "message_stop"}}));
  return ev;
}

std::vector<std::string> openai_events(const Reply& r) {
  auto chunk = [](const json& delta, const json& finish) {
    json c = {{"id", "chatcmpl-stand-in"}, {"object", "chat.completion.chunk"}, {"created", 1700000000},
              {"model", "stand-in"},
              {"choices", json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}}})}};
    return "data: " + c.dump() + "\n\n";
  };
  std::vector<std::string> ev;
  if (!r.refusal.empty()) {
    ev.push_back(chunk({{"role", "assistant"}, {"content", nullptr}, {"refusal", ""}}, nullptr));
    for (const auto& p : pieces(r.refusal, 8)) ev.push_back(chunk({{"refusal", p}}, nullptr));
  } else {
    ev.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  for (const auto& p : pieces(r.text, 8)) ev.push_back(chunk({{"content", p}}, nullptr));
  for (size_t i = 0; i < r.tool_calls.size(); ++i) {
    const auto& c = r.tool_calls[i];
    ev.push_back(chunk({{"tool_calls", json::array({{{"index", i}, {"id", c.id}, {"type", "function"},
                                                      {"function", {{"name", c.name}, {"arguments", ""}}}}})}},
                       nullptr));
    for (const auto& p : pieces(c.arguments, 5)) {
      ev.push_back(chunk({{"tool_calls", json::array({{{"index", i}, {"function", {{"arguments", p}}}}})}}, nullptr));
    }
  }
  std::string stop = !r.stop_reason.empty() ? r.stop_reason : r.tool_calls.empty() ? "stop" : "tool_calls";
  ev.push_back(chunk(json::object(), stop));
  json usage = {{"id", "chatcmpl-stand-in"}, {"object", "chat.completion.chunk"}, {"created", 1700000000},
                {"model", "stand-in"}, {"choices", json::array()},
                {"usage", {{"prompt_tokens", r.input_tokens}, {"completion_tokens", r.output_tokens},
                           {"total_tokens", r.input_tokens + r.output_tokens}}}};
  ev.push_back("data: " + usage.dump() + "\n\n");
  ev.push_back("data: [DONE]\n\n");
  return ev;
}

std::string chunked(const std::string& data) {
  char size[32];
  snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return "Status";
  }
}

}  // namespace

struct Conn;

struct ModelServer::Impl {
  uv_loop_t loop{};
  uv_tcp_t listener{};
  uv_async_t stop{};
  std::thread thread;
  std::set<Conn*> conns;
  mutable std::mutex mu;  // guards the script and the record below
  std::deque<Reply> script;
  Reply fallback = Reply::say("ok");
  ModelServer::Responder responder;
  std::vector<ReceivedRequest> received;
  size_t accepted = 0;

  Reply next(ReceivedRequest req) {
    std::lock_guard lock(mu);
    received.push_back(std::move(req));
    if (script.empty() && responder) {
      if (auto r = responder(received.back())) return std::move(*r);
    }
    if (script.empty()) return fallback;
    Reply r = std::move(script.front());
    script.pop_front();
    return r;
  }
};

/// One connection, on the server's loop. Deleted when both its handles closed.
struct Conn {
  ModelServer::Impl* server = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  http_parser parser{};
  ReceivedRequest req;
  std::string field, value;
  bool in_value = false;
  std::vector<std::string> queue;  // writes still to send, with event_delay between
  std::chrono::milliseconds gap{0};
  bool close_after = false;  // close when the queue is sent (disconnect fault)
  std::string reply_path;          // the path being answered: it picks the wire format
  std::optional<Reply> delayed;    // a reply waiting out its delay
  bool closing = false;
  int open = 2;

  void close() {
    if (closing) return;
    closing = true;
    server->conns.erase(this);
    uv_timer_stop(&timer);
    auto done = [](uv_handle_t* h) {
      auto* c = static_cast<Conn*>(h->data);
      if (--c->open == 0) delete c;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), done);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), done);
  }

  void write(std::string data) {
    if (closing) return;
    auto* w = new uv_write_t;
    auto* buf = new std::string(std::move(data));
    w->data = buf;
    uv_buf_t b = uv_buf_init(buf->data(), static_cast<unsigned>(buf->size()));
    int rc = uv_write(w, reinterpret_cast<uv_stream_t*>(&tcp), &b, 1, [](uv_write_t* w, int) {
      delete static_cast<std::string*>(w->data);
      delete w;
    });
    if (rc != 0) {
      delete buf;
      delete w;
      close();
    }
  }

  /// Sends queued pieces: all at once, or one per timer tick.
  void pump() {
    while (!queue.empty() && !closing) {
      write(std::move(queue.front()));
      queue.erase(queue.begin());
      if (gap.count() > 0 && !queue.empty()) {
        uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<Conn*>(t->data)->pump(); }, gap.count(), 0);
        return;
      }
    }
    if (queue.empty() && close_after) close();
  }

  void respond(const Reply& r) {
    std::string head;
    if (r.status != 200) {
      head = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
             "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(r.status_body.size()) + "\r\n";
      for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
      queue.push_back(head + "\r\n" + r.status_body);
      pump();
      return;
    }
    head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n";
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    std::vector<std::string> events;
    bool openai = reply_path.find("/chat/completions") != std::string::npos;
    if (r.raw_body) {
      events = r.raw_chunk ? pieces(*r.raw_body, r.raw_chunk) : std::vector<std::string>{*r.raw_body};
    } else {
      events = openai ? openai_events(r) : anthropic_events(r);
    }
    size_t half = std::max<size_t>(1, events.size() / 2);
    using F = Reply::Fault;
    switch (r.fault) {
      case F::none: break;
      case F::truncate:
      case F::disconnect:
      case F::stall: events.resize(half); break;
      case F::invalid_json: events.insert(events.begin() + half, openai ? "data: {\"choices\": [oops\n\n"
                                                                         : "event: content_block_delta\ndata: {\"type\": oops\n\n");
        break;
      case F::error_event:
        events.resize(half);
        events.push_back(openai ? "data: {\"error\": {\"message\": \"Overloaded\", \"type\": \"overloaded_error\"}}\n\n"
                                : sse("error", {{"type", "error"}, {"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}}));
        break;
    }
    queue.push_back(head + "\r\n");
    for (auto& e : events) queue.push_back(chunked(e));
    if (r.fault == F::disconnect) {
      queue.push_back("5\r\nevent");  // a chunk cut short, then the connection closes
      close_after = true;
    } else if (r.fault != F::stall) {
      queue.push_back("0\r\n\r\n");
    }
    if (!http_should_keep_alive(&parser)) close_after = true;
    gap = r.event_delay;
    pump();
  }
};

namespace {

int on_url(http_parser* p, const char* at, size_t n) {
  static_cast<Conn*>(p->data)->req.path.append(at, n);
  return 0;
}
void flush_header(Conn* c) {
  if (c->field.empty()) return;
  std::transform(c->field.begin(), c->field.end(), c->field.begin(), [](unsigned char ch) { return std::tolower(ch); });
  c->req.headers[c->field] = c->value;
  c->field.clear();
  c->value.clear();
}
int on_field(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<Conn*>(p->data);
  if (c->in_value) flush_header(c);
  c->in_value = false;
  c->field.append(at, n);
  return 0;
}
int on_value(http_parser* p, const char* at, size_t n) {
  auto* c = static_cast<Conn*>(p->data);
  c->in_value = true;
  c->value.append(at, n);
  return 0;
}
int on_headers_done(http_parser* p) {
  flush_header(static_cast<Conn*>(p->data));
  return 0;
}
int on_body(http_parser* p, const char* at, size_t n) {
  static_cast<Conn*>(p->data)->req.body.append(at, n);
  return 0;
}
int on_complete(http_parser* p) {
  auto* c = static_cast<Conn*>(p->data);
  c->req.method = http_method_str(static_cast<http_method>(p->method));
  ReceivedRequest req = std::move(c->req);
  c->req = ReceivedRequest{};
  c->in_value = false;
  c->reply_path = req.path;
  Reply r = c->server->next(std::move(req));
  if (r.delay.count() > 0) {
    c->delayed = std::move(r);
    uv_timer_start(&c->timer, [](uv_timer_t* t) {
      auto* conn = static_cast<Conn*>(t->data);
      Reply reply = std::move(*conn->delayed);
      conn->delayed.reset();
      conn->respond(reply);
    }, c->delayed->delay.count(), 0);
  } else {
    c->respond(r);
  }
  return 0;
}

http_parser_settings make_settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_field;
  s.on_header_value = on_value;
  s.on_headers_complete = on_headers_done;
  s.on_body = on_body;
  s.on_message_complete = on_complete;
  return s;
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  if (n > 0 && !c->closing) {
    static const http_parser_settings settings = make_settings();
    size_t used = http_parser_execute(&c->parser, &settings, buf->base, static_cast<size_t>(n));
    if (c->parser.http_errno != HPE_OK || used != static_cast<size_t>(n)) {
      c->write("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      c->close_after = true;
      c->pump();
    }
  } else if (n < 0) {
    c->close();
  }
  delete[] buf->base;
}

void on_connection(uv_stream_t* listener, int status) {
  auto* impl = static_cast<ModelServer::Impl*>(listener->data);
  if (status < 0) return;
  auto* c = new Conn;
  c->server = impl;
  uv_tcp_init(&impl->loop, &c->tcp);
  uv_timer_init(&impl->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  impl->conns.insert(c);
  {
    std::lock_guard lock(impl->mu);
    ++impl->accepted;
  }
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    c->close();
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);  // small SSE writes must not wait for delayed ACKs
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp),
                [](uv_handle_t*, size_t size, uv_buf_t* b) { *b = uv_buf_init(new char[size], static_cast<unsigned>(size)); },
                on_read);
}

}  // namespace

ModelServer::ModelServer() : impl_(std::make_unique<Impl>()) {
  // A client that hangs up mid-stream (a cancel, a timeout) must make the
  // next write fail with EPIPE, not end the test process, as a real server's
  // would (the engine's servers do the same).
  hearth::util::ignore_sigpipe_if_default();
  Impl* impl = impl_.get();
  uv_loop_init(&impl->loop);
  uv_tcp_init(&impl->loop, &impl->listener);
  impl->listener.data = impl;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&impl->listener, reinterpret_cast<const sockaddr*>(&addr), 0) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&impl->listener), 512, on_connection) != 0) {
    throw std::runtime_error("model server: cannot listen on 127.0.0.1");
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&impl->listener, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uv_async_init(&impl->loop, &impl->stop, [](uv_async_t* a) {
    auto* impl = static_cast<Impl*>(a->data);
    auto conns = impl->conns;
    for (Conn* c : conns) c->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->listener), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->stop), nullptr);
  });
  impl->stop.data = impl;
  impl->thread = std::thread([impl] { uv_run(&impl->loop, UV_RUN_DEFAULT); });
}

ModelServer::~ModelServer() {
  uv_async_send(&impl_->stop);
  impl_->thread.join();
  uv_loop_close(&impl_->loop);
}

void ModelServer::push(Reply reply) {
  std::lock_guard lock(impl_->mu);
  impl_->script.push_back(std::move(reply));
}

void ModelServer::set_default(Reply reply) {
  std::lock_guard lock(impl_->mu);
  impl_->fallback = std::move(reply);
}

void ModelServer::set_responder(Responder responder) {
  std::lock_guard lock(impl_->mu);
  impl_->responder = std::move(responder);
}

std::vector<ReceivedRequest> ModelServer::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}

size_t ModelServer::request_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received.size();
}

size_t ModelServer::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->accepted;
}

}  // namespace hearth::testing
