// The clock seam's twin (util/clock.h): time stands still until the test
// calls advance(), which fires every timer that falls due, in order, on the
// calling thread. Given to an engine, it makes retry backoff, lease expiry
// and step timeouts happen when the test says, with no real waiting; the
// processes, sockets and SQLite files around them stay real.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "util/clock.h"

namespace hearth::testing {

/// Must outlive the timers it makes.
class ManualClock final : public util::Clock {
 public:
  /// Starts at wall-clock time `wall_ms` (ms since the epoch; default: now).
  explicit ManualClock(std::optional<int64_t> wall_ms = std::nullopt)
      : start_wall_(wall_ms ? *wall_ms : system_now_ms()) {}

  int64_t now_ms() const override { return start_wall_ + elapsed_; }
  int64_t monotonic_ms() const override { return elapsed_; }

  std::unique_ptr<util::Timer> timer(std::function<void()> fire) override {
    auto state = std::make_shared<State>();
    state->fire = std::move(fire);
    states_.push_back(state);
    return std::make_unique<ManualTimer>(*this, std::move(state));
  }

  /// Moves time forward by `by`. Each timer due on the way fires with the
  /// clock reading its due time, earliest first (ties in the order they were
  /// started); a repeating one fires as often as it falls due. What a
  /// callback starts or stops counts at once: a timer it starts that falls
  /// due before the end fires in this call too.
  void advance(std::chrono::milliseconds by) {
    int64_t until = elapsed_ + by.count();
    while (auto next = earliest(until)) {
      elapsed_ = next->due;
      if (next->repeat > 0) {
        next->due += next->repeat;
        next->order = ++started_;
      } else {
        next->armed = false;
      }
      next->fire();  // `next` keeps the callback alive if it destroys its Timer
    }
    elapsed_ = until;
  }

  /// How long until the next timer fires, if one is armed.
  std::optional<std::chrono::milliseconds> next_due() const {
    std::optional<int64_t> best;
    for (auto& w : states_)
      if (auto s = w.lock(); s && s->armed && (!best || s->due < *best)) best = s->due;
    if (!best) return std::nullopt;
    return std::chrono::milliseconds(*best - elapsed_);
  }

 private:
  struct State {
    std::function<void()> fire;
    bool armed = false;
    int64_t due = 0;     // on the monotonic count
    int64_t repeat = 0;
    uint64_t order = 0;  // ties fire in start order
  };

  class ManualTimer final : public util::Timer {
   public:
    ManualTimer(ManualClock& clock, std::shared_ptr<State> state) : clock_(clock), state_(std::move(state)) {}
    ~ManualTimer() override { state_->armed = false; }
    void start(std::chrono::milliseconds after, std::chrono::milliseconds repeat) override {
      state_->armed = true;
      state_->due = clock_.elapsed_ + std::max<int64_t>(0, after.count());
      state_->repeat = std::max<int64_t>(0, repeat.count());
      state_->order = ++clock_.started_;
    }
    void stop() override { state_->armed = false; }

   private:
    ManualClock& clock_;
    std::shared_ptr<State> state_;
  };

  // The armed timer that fires next, if it is due by `until`.
  std::shared_ptr<State> earliest(int64_t until) {
    std::erase_if(states_, [](const std::weak_ptr<State>& w) { return w.expired(); });
    std::shared_ptr<State> best;
    for (auto& w : states_) {
      auto s = w.lock();
      if (!s || !s->armed || s->due > until) continue;
      if (!best || s->due < best->due || (s->due == best->due && s->order < best->order)) best = s;
    }
    return best;
  }

  static int64_t system_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  int64_t start_wall_;
  int64_t elapsed_ = 0;
  uint64_t started_ = 0;
  std::vector<std::weak_ptr<State>> states_;
};

}  // namespace hearth::testing
