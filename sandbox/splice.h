// Copying bytes both ways between two open libuv streams, with backpressure:
// what the sandbox's loopback forwards (forwarder.h) and the proxy's CONNECT
// tunnels (proxy/) are made of. A Splice owns no handle.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "util/status.h"

namespace hearth::sandbox {

class Splice {
 public:
  struct Totals {
    uint64_t a_to_b = 0;
    uint64_t b_to_a = 0;
  };
  /// Called once: ok when each direction has reached end-of-file and been
  /// passed on (shutdown of the other side), or the first error that cut
  /// the splice. Either way the splice has stopped reading, and the handles'
  /// `data` fields hold again what they held before start(); the owner
  /// closes the handles.
  using Ended = std::function<void(Status, const Totals&)>;

  Splice() = default;
  Splice(const Splice&) = delete;
  Splice& operator=(const Splice&) = delete;

  /// Starts copying between `a` and `b` (both open, connected, not reading).
  /// `a_to_b_first`: bytes already read from `a` that go to `b` first.
  /// REQUIRES: the Splice outlives the close callbacks of both handles
  /// (write and shutdown requests complete, cancelled, before them): keep
  /// it in the object that owns the handles. Call once.
  void start(uv_stream_t* a, uv_stream_t* b, std::string a_to_b_first, Ended ended);
  /// Stops at once (as an error `why`, if not yet ended). Safe after the end.
  void cut(const std::string& why);
  bool running() const { return started_ && !ended_; }
  const Totals& totals() const { return totals_; }

  /// Bytes queued for a side beyond which reading the other side pauses.
  static constexpr size_t kHighWater = 256 * 1024;

 private:
  struct Direction {
    uv_stream_t* from = nullptr;
    uv_stream_t* to = nullptr;
    uv_shutdown_t shutdown{};
    bool paused = false, eof = false, done = false;
  };
  struct Write;

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void on_written(uv_write_t* w, int status) noexcept;
  static void on_shutdown(uv_shutdown_t* r, int status) noexcept;
  Direction& from(uv_stream_t* s) { return s == dirs_[0].from ? dirs_[0] : dirs_[1]; }
  uint64_t& total(const Direction& d) { return &d == &dirs_[0] ? totals_.a_to_b : totals_.b_to_a; }
  void forward(Direction& d, char* data, size_t len);
  void finish(Status s);

  Direction dirs_[2];  // [0]: a to b, [1]: b to a
  void* saved_data_[2] = {nullptr, nullptr};
  Totals totals_;
  Ended ended_cb_;
  bool started_ = false, ended_ = false;
};

}  // namespace hearth::sandbox
