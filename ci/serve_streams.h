// Private to serve*.cpp: GET /runs/<id>/events as Server-Sent Events.
// Stored events after Last-Event-ID are replayed from the store, then live
// ones follow as the engine commits them (this is an engine Observer), each
// as "id: <seq>", "event: <type>", "data: <event JSON line>". Step output is
// sent as "event: output" without an id (it is not stored as events). The
// stream ends after run.finished. A reader that falls more than the
// server's stream backlog behind is disconnected; it resumes with
// Last-Event-ID.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "http/server.h"
#include "engine/events.h"

namespace hearth::ci {

class EventStreams : public engine::Observer {
 public:
  /// `loop` and `store` must outlive it. REQUIRES at destruction: close()
  /// has completed.
  EventStreams(uv_loop_t* loop, engine::Store& store, std::chrono::milliseconds keepalive);
  ~EventStreams() override;

  /// Starts the stream on `r`: replays the run's stored events after
  /// `after_seq`; then, if `live`, follows the run until run.finished.
  /// The run must exist.
  void open(const std::string& run_id, int64_t after_seq, bool live, http::Responder r);
  /// Ends every stream (shutdown).
  void end_all();
  /// Ends every stream and closes the keep-alive timer; `done` fires after.
  void close(std::function<void()> done);

  void on_event(const engine::EventRecord& event) override;
  void on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) override;

 private:
  struct Subscriber {
    std::string run;
    int64_t last = 0;  // highest seq sent
    http::Responder r;
    bool gone = false;  // the client left; erased by the next sweep()
  };
  // Erases gone subscribers; never called while iterating subs_.
  void sweep();
  static void on_keepalive(uv_timer_t* t) noexcept;

  engine::Store& store_;
  std::chrono::milliseconds keepalive_ms_;
  std::unordered_multimap<std::string, std::unique_ptr<Subscriber>> subs_;
  uv_timer_t keepalive_{};
  std::function<void()> on_closed_;
};

}  // namespace hearth::ci
