#include "util/clock.h"

#include <algorithm>

namespace hearth::util {

namespace {

// The handle and the callback live on the heap apart from the Timer: a
// Timer destroyed from its own callback leaves them to the close callback,
// which runs after the callback has returned.
struct TimerHandle {
  uv_timer_t timer{};
  std::function<void()> fire;
};

class LoopTimer final : public Timer {
 public:
  LoopTimer(uv_loop_t* loop, std::function<void()> fire) : h_(new TimerHandle) {
    h_->fire = std::move(fire);
    uv_timer_init(loop, &h_->timer);
    h_->timer.data = h_;
  }
  ~LoopTimer() override {
    uv_timer_stop(&h_->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->timer),
             [](uv_handle_t* h) noexcept { delete static_cast<TimerHandle*>(h->data); });
  }
  LoopTimer(const LoopTimer&) = delete;
  LoopTimer& operator=(const LoopTimer&) = delete;

  void start(std::chrono::milliseconds after, std::chrono::milliseconds repeat) override {
    uv_timer_start(&h_->timer, &LoopTimer::on_timer, static_cast<uint64_t>(std::max<int64_t>(0, after.count())),
                   static_cast<uint64_t>(std::max<int64_t>(0, repeat.count())));
  }
  void stop() override { uv_timer_stop(&h_->timer); }

 private:
  static void on_timer(uv_timer_t* t) noexcept { static_cast<TimerHandle*>(t->data)->fire(); }

  TimerHandle* h_;  // deleted by the close callback
};

}  // namespace

int64_t LoopClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t LoopClock::monotonic_ms() const { return static_cast<int64_t>(uv_now(loop_)); }

std::unique_ptr<Timer> LoopClock::timer(std::function<void()> fire) {
  return std::make_unique<LoopTimer>(loop_, std::move(fire));
}

}  // namespace hearth::util
