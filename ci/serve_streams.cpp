#include "ci/serve_streams.h"

#include <nlohmann/json.hpp>

namespace hearth::ci {

namespace {

std::string sse(const engine::EventRecord& e) {
  return "id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: " + engine::event_to_json_line(e) + "\n\n";
}

}  // namespace

EventStreams::EventStreams(uv_loop_t* loop, engine::Store& store, std::chrono::milliseconds keepalive)
    : store_(store), keepalive_ms_(keepalive) {
  uv_timer_init(loop, &keepalive_);
  keepalive_.data = this;
  auto ms = static_cast<uint64_t>(keepalive.count());
  uv_timer_start(&keepalive_, &EventStreams::on_keepalive, ms, ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(&keepalive_));
}

EventStreams::~EventStreams() = default;

void EventStreams::open(const std::string& run_id, int64_t after_seq, bool live, http::Responder r) {
  auto events = store_.load_events(run_id, after_seq);
  if (!events) {
    r.send(http::HttpResponse{500, {{"Content-Type", "text/plain"}}, events.message() + "\n"});
    return;
  }
  auto sub = std::make_unique<Subscriber>();
  Subscriber* s = sub.get();
  s->run = run_id;
  s->last = after_seq;
  s->r = std::move(r);
  s->r.start_stream(200,
                    {{"Content-Type", "text/event-stream"},
                     {"Cache-Control", "no-cache"},
                     {"X-Accel-Buffering", "no"}},
                    [s] { s->gone = true; });
  std::string replay = "retry: 2000\n\n";
  bool finished = false;
  for (auto& e : *events) {
    replay += sse(e);
    s->last = e.seq;
    finished = finished || e.type == engine::event_type::run_finished;
  }
  if (!s->r.write(std::move(replay))) return;  // gone already
  if (!live || finished) {
    s->r.end();
    return;
  }
  subs_.emplace(run_id, std::move(sub));
}

void EventStreams::sweep() {
  for (auto it = subs_.begin(); it != subs_.end();) {
    if (it->second->gone) it = subs_.erase(it);
    else ++it;
  }
}

void EventStreams::on_event(const engine::EventRecord& e) {
  auto range = subs_.equal_range(e.run_id);
  if (range.first == range.second) return;
  std::string msg = sse(e);
  bool last = e.type == engine::event_type::run_finished;
  for (auto it = range.first; it != range.second; ++it) {
    Subscriber* s = it->second.get();
    if (s->gone || e.seq <= s->last) continue;
    s->last = e.seq;
    if (!s->r.write(msg)) continue;  // marked gone
    if (last) {
      s->r.end();
      s->gone = true;
    }
  }
  sweep();
}

void EventStreams::on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) {
  auto range = subs_.equal_range(run_id);
  if (range.first == range.second) return;
  nlohmann::json j = {{"run", run_id}, {"step", step_id}, {"text", std::string(chunk)}};
  std::string msg = "event: output\ndata: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
  for (auto it = range.first; it != range.second; ++it)
    if (!it->second->gone) it->second->r.write(msg);
  sweep();
}

void EventStreams::on_keepalive(uv_timer_t* t) noexcept {
  auto* self = static_cast<EventStreams*>(t->data);
  for (auto& [run, s] : self->subs_)
    if (!s->gone) s->r.write(": keep-alive\n\n");
  self->sweep();
}

void EventStreams::end_all() {
  auto subs = std::move(subs_);
  subs_.clear();
  for (auto& [run, s] : subs) s->r.end();
}

void EventStreams::close(std::function<void()> done) {
  end_all();
  on_closed_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&keepalive_), [](uv_handle_t* h) noexcept {
    auto* self = static_cast<EventStreams*>(h->data);
    if (self->on_closed_) std::exchange(self->on_closed_, nullptr)();
  });
}

}  // namespace hearth::ci
