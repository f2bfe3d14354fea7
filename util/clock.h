// The engine's time, as a seam: what it records (wall-clock milliseconds),
// what it measures (a monotonic count), and the timers that wake it — retry
// backoff, the lease heartbeat, step timeouts and the kill grace after them.
// LoopClock, the default, reads the system and runs libuv timers on the
// loop; a test passes a manual twin whose time moves only when the test
// says (tests/support/manual_clock.h), so minutes of backoff pass in a call
// and real processes, sockets and SQLite files stay real.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace hearth::util {

/// One timer of a Clock, stopped until start(). It fires on the thread that
/// drives its clock (the loop thread for a LoopClock). Destroying it stops
/// it for good; that may happen at any time on that thread, also from its
/// own callback (the callback's captures stay alive until it returns).
class Timer {
 public:
  virtual ~Timer() = default;
  /// Fires after `after`, then every `repeat` while it is non-zero, until
  /// stop(). Starting a started timer restarts it.
  virtual void start(std::chrono::milliseconds after, std::chrono::milliseconds repeat = {}) = 0;
  virtual void stop() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time, milliseconds since the Unix epoch: what the store
  /// records (started_at, retry_at, the lease's heartbeat) and compares.
  virtual int64_t now_ms() const = 0;
  /// A monotonic count of milliseconds, for durations; never goes back.
  virtual int64_t monotonic_ms() const = 0;
  /// A stopped timer that calls `fire` each time it is due. `fire` must not
  /// throw (a LoopClock calls it from libuv).
  virtual std::unique_ptr<Timer> timer(std::function<void()> fire) = 0;
};

/// The system's clocks and libuv timers on `loop`. A timer's handle closes
/// through the loop after the Timer is destroyed, so the loop must run once
/// more before uv_loop_close (as for any handle). The clock holds no handle
/// of its own: it may be destroyed while its timers live on.
class LoopClock final : public Clock {
 public:
  /// REQUIRES: `loop` outlives every timer made by this clock.
  explicit LoopClock(uv_loop_t* loop) : loop_(loop) {}
  int64_t now_ms() const override;
  int64_t monotonic_ms() const override;
  std::unique_ptr<Timer> timer(std::function<void()> fire) override;

 private:
  uv_loop_t* loop_;
};

}  // namespace hearth::util
