// The client both HTTP providers share: one Call per send(), attempts over
// http::HttpClient (http/client.h), SSE decoding, retries with backoff and jitter, the per-attempt
// and idle-stream deadlines, cancellation.
#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <random>

#include "model/wire.h"

namespace hearth::model {
namespace {

class StreamingClient;

/// One send(). Lives on the heap; owns a uv timer (backoff wait and
/// deadlines) and deletes itself from that timer's close callback.
struct Call {
  enum class State { running, waiting, done };
  StreamingClient* client = nullptr;
  RequestId id = 0;
  Request request;
  Stream stream;
  http::ClientRequest http;
  uv_timer_t timer{};
  State state = State::running;
  http::TransferId transfer = 0;
  int attempt = 0;
  int status = 0;
  http::HttpHeaders headers;
  std::string error_body;
  sse::Parser parser;
  std::unique_ptr<Decoder> decoder;
  uint64_t attempt_start = 0;
  uint64_t last_byte = 0;
};

class StreamingClient final : public Client {
 public:
  StreamingClient(uv_loop_t* loop, std::string spec, std::unique_ptr<Wire> wire, ClientOptions options)
      : loop_(loop), spec_(std::move(spec)), wire_(std::move(wire)), options_(std::move(options)),
        http_(http::HttpClient::create(loop)), rng_(std::random_device{}()) {}

  ~StreamingClient() override {
    for (auto& [id, call] : calls_) {
      if (call->transfer) http_->cancel(call->transfer);
      call->state = Call::State::done;
      close_call(call);
    }
    calls_.clear();
    http_->close();
  }

  RequestId send(Request request, Stream stream) override {
    auto* call = new Call;
    call->client = this;
    call->id = next_id_++;
    call->request = std::move(request);
    call->stream = std::move(stream);
    if (call->request.model.empty()) call->request.model = default_model();
    call->http = wire_->build(call->request);
    uv_timer_init(loop_, &call->timer);
    call->timer.data = call;
    calls_.emplace(call->id, call);
    begin_attempt(call);
    return call->id;
  }

  bool cancel(RequestId id) override {
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    Call* call = it->second;
    if (call->transfer) http_->cancel(call->transfer);
    call->transfer = 0;
    ModelError e{ErrorKind::cancelled, 0, "", "the request was cancelled", call->attempt};
    finish(call, Outcome{std::move(e), call->decoder ? call->decoder->response() : Response{}});
    return true;
  }

  const std::string& spec() const override { return spec_; }
  size_t active() const override { return calls_.size(); }

 private:
  std::string default_model() const { return spec_.substr(spec_.find('/') + 1); }

  void begin_attempt(Call* call) {
    ++call->attempt;
    call->state = Call::State::running;
    call->status = 0;
    call->headers.clear();
    call->error_body.clear();
    call->parser = sse::Parser{};
    call->decoder = wire_->decoder(&call->stream);
    call->attempt_start = call->last_byte = uv_now(loop_);
    http::HttpHandlers h;
    h.on_headers = [call](int status, const http::HttpHeaders& headers) {
      call->status = status;
      call->headers = headers;
    };
    h.on_body = [this, call](std::string_view bytes) { on_body(call, bytes); };
    h.on_done = [this, call](http::HttpResult r) { on_http_done(call, std::move(r)); };
    call->transfer = http_->start(call->http, std::move(h));
    arm_deadline(call);
  }

  void arm_deadline(Call* call) {
    uint64_t now = uv_now(loop_);
    uint64_t total = call->attempt_start + options_.request_timeout.count();
    uint64_t idle = call->last_byte + options_.idle_timeout.count();
    uint64_t at = std::min(total, idle);
    uv_timer_start(&call->timer, &StreamingClient::on_timer, at > now ? at - now : 0, 0);
  }

  static void on_timer(uv_timer_t* t) noexcept {
    auto* call = static_cast<Call*>(t->data);
    auto* self = call->client;
    if (call->state == Call::State::waiting) {
      self->begin_attempt(call);
      return;
    }
    if (call->state != Call::State::running) return;
    uint64_t now = uv_now(self->loop_);
    auto& o = self->options_;
    if (now >= call->attempt_start + o.request_timeout.count()) {
      self->fail(call, ModelError{ErrorKind::timeout, call->status, "",
                                  "no complete response within the request timeout of " +
                                      std::to_string(o.request_timeout.count()) + " ms"});
    } else if (now >= call->last_byte + o.idle_timeout.count()) {
      self->fail(call, ModelError{ErrorKind::idle_timeout, call->status, "",
                                  "no data from the server for " + std::to_string(o.idle_timeout.count()) +
                                      " ms (idle-stream timeout)"});
    } else {
      self->arm_deadline(call);  // bytes arrived since the timer was set
    }
  }

  void on_body(Call* call, std::string_view bytes) {
    if (call->state != Call::State::running) return;
    call->last_byte = uv_now(loop_);
    if (call->status < 200 || call->status >= 300) {
      if (call->error_body.size() < 65536) call->error_body.append(bytes.substr(0, 65536));
      return;
    }
    std::optional<ModelError> err;
    bool fits = call->parser.feed(bytes, [&](const sse::Event& e) {
      if (!err && call->state == Call::State::running) err = call->decoder->on_event(e);
    });
    if (call->state != Call::State::running) return;  // cancelled from a callback
    if (!fits) err = ModelError{ErrorKind::invalid_json, 0, "", "a stream line exceeds 16 MiB"};
    if (err) fail(call, std::move(*err));
  }

  void on_http_done(Call* call, http::HttpResult r) {
    call->transfer = 0;
    if (call->state != Call::State::running) return;
    bool streaming = call->status >= 200 && call->status < 300;
    if (!r.ok()) {
      ModelError e{streaming ? ErrorKind::truncated_stream : ErrorKind::connection, call->status, "",
                   std::string(streaming ? "the stream broke off: " : "could not reach ") +
                       (streaming ? r.error : call->http.url + ": " + r.error)};
      fail(call, std::move(e));
      return;
    }
    if (!streaming) {
      fail(call, status_error(call));
      return;
    }
    if (auto err = call->decoder->finish()) {
      fail(call, std::move(*err));
      return;
    }
    Outcome out;
    out.response = std::move(call->decoder->response());
    out.response.attempts = call->attempt;
    finish(call, std::move(out));
  }

  ModelError status_error(Call* call) {
    ModelError e{ErrorKind::http_status, call->status, "", ""};
    wire_->parse_error(call->error_body, e);
    if (call->status == 429) e.kind = ErrorKind::rate_limited;
    if (call->status == 529 || e.provider_type == "overloaded_error") e.kind = ErrorKind::overloaded;
    e.message = std::string(wire_->name()) + " answered HTTP " + std::to_string(call->status) +
                (e.message.empty() ? "" : ": " + e.message);
    return e;
  }

  static bool retryable(const ModelError& e) {
    switch (e.kind) {
      case ErrorKind::rate_limited:
      case ErrorKind::overloaded:
      case ErrorKind::connection:
      case ErrorKind::idle_timeout:
      case ErrorKind::truncated_stream:
        return true;
      case ErrorKind::http_status:
        return e.http_status == 500 || e.http_status == 502 || e.http_status == 503 || e.http_status == 504;
      case ErrorKind::error_event:
        return e.provider_type == "overloaded_error" || e.provider_type == "api_error" ||
               e.provider_type == "rate_limit_error";
      default:
        return false;
    }
  }

  /// The server's retry-after (seconds or an HTTP date; retry-after-ms), if any.
  std::optional<uint64_t> retry_after_ms(const Call* call) const {
    if (auto it = call->headers.find("retry-after-ms"); it != call->headers.end()) {
      char* end = nullptr;
      double ms = std::strtod(it->second.c_str(), &end);
      if (end != it->second.c_str() && ms >= 0) return static_cast<uint64_t>(ms);
    }
    if (auto it = call->headers.find("retry-after"); it != call->headers.end()) {
      char* end = nullptr;
      double s = std::strtod(it->second.c_str(), &end);
      if (end != it->second.c_str() && s >= 0) return static_cast<uint64_t>(s * 1000);
      time_t when = curl_getdate(it->second.c_str(), nullptr);
      if (when > 0) {
        time_t now = std::time(nullptr);
        return when > now ? static_cast<uint64_t>(when - now) * 1000 : 0;
      }
    }
    return std::nullopt;
  }

  void fail(Call* call, ModelError e) {
    if (call->transfer) http_->cancel(call->transfer);
    call->transfer = 0;
    e.attempts = call->attempt;
    if (retryable(e) && call->attempt <= options_.max_retries) {
      uint64_t cap = options_.backoff_max.count();
      uint64_t delay;
      if (auto ra = retry_after_ms(call)) {
        delay = std::min(*ra, cap);
      } else {
        double base = options_.backoff_base.count() * std::pow(2.0, call->attempt - 1);
        std::uniform_real_distribution<double> jitter(0.75, 1.25);
        delay = std::min(static_cast<uint64_t>(base * jitter(rng_)), cap);
      }
      call->state = Call::State::waiting;
      uv_timer_start(&call->timer, &StreamingClient::on_timer, delay, 0);
      if (call->stream.on_retry) call->stream.on_retry(call->attempt, e, std::chrono::milliseconds(delay));
      return;
    }
    Response partial = call->decoder ? std::move(call->decoder->response()) : Response{};
    partial.attempts = call->attempt;
    finish(call, Outcome{std::move(e), std::move(partial)});
  }

  /// Ends the call: its on_done is the last thing that runs here (it may
  /// destroy this client).
  void finish(Call* call, Outcome out) {
    call->state = Call::State::done;
    calls_.erase(call->id);
    auto done = std::move(call->stream.on_done);
    call->stream = Stream{};
    close_call(call);
    if (done) done(std::move(out));
  }

  static void close_call(Call* call) {
    uv_timer_stop(&call->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&call->timer),
             [](uv_handle_t* h) { delete static_cast<Call*>(h->data); });
  }

  uv_loop_t* loop_;
  std::string spec_;
  std::unique_ptr<Wire> wire_;
  ClientOptions options_;
  http::HttpClient* http_;  // closes itself (http::HttpClient::close)
  std::map<RequestId, Call*> calls_;
  RequestId next_id_ = 1;
  std::minstd_rand rng_;
};

}  // namespace

std::unique_ptr<Client> make_streaming_client(uv_loop_t* loop, std::string spec, std::unique_ptr<Wire> wire,
                                              ClientOptions options) {
  return std::make_unique<StreamingClient>(loop, std::move(spec), std::move(wire), std::move(options));
}

}  // namespace hearth::model
