// A libuv loop for tests: run until a condition holds or a deadline passes
// (a hang fails loudly), and a loop owned by a fixture that must close
// cleanly (a leaked handle fails the test).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

#include <boost/test/unit_test.hpp>

namespace hearth::testing {

/// Runs `loop` until `done()` holds, failing loudly after `timeout` (a
/// timer wakes the loop to check the deadline) or when the loop runs out of
/// work first.
inline void run_loop_until(uv_loop_t* loop, const std::function<bool()>& done,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) noexcept {}, 50, 50);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  BOOST_REQUIRE_MESSAGE(done(), "timed out waiting on the loop");
}

/// A fresh loop for one test. At scope exit the loop runs until it is empty
/// and must then close: whatever the test left open fails it.
struct LoopFixture {
  uv_loop_t loop{};
  LoopFixture() { uv_loop_init(&loop); }
  ~LoopFixture() {
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0);
  }
  LoopFixture(const LoopFixture&) = delete;
  LoopFixture& operator=(const LoopFixture&) = delete;

  /// Runs until `done()` holds (see run_loop_until).
  void run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    run_loop_until(&loop, done, timeout);
  }
};

}  // namespace hearth::testing
