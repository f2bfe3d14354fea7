// The framed protocol between the shim inside the sandbox and the broker on
// the engine's side, over the Unix socket bound into the sandbox.
//
// Every message is a frame: 1 byte type, 4 bytes payload length (big
// endian), the payload. Binary-safe; a frame carries at most kMaxPayload
// bytes, so a large stream is many frames.
//
//   shim -> broker:  request (once, first: JSON {"argv": [...], "cwd": "rel/path", "env": {...}}),
//                    stdin (bytes, any number), stdin_eof (empty, once)
//   broker -> shim:  stdout, stderr (bytes, any number, interleaved),
//                    exit (once, last: JSON {"code": n} — the program's exit code,
//                    or 126 when the broker refused the call, 128+N when killed by signal N)
//
// Either side that receives a malformed frame (unknown type, a length over
// the limit, a request that is not the expected JSON) closes the
// connection; the broker kills the program it started for it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hearth::commands {

enum class FrameType : uint8_t { request = 1, stdin_data = 2, stdin_eof = 3, stdout_data = 4, stderr_data = 5, exit = 6 };

inline constexpr size_t kFrameHeader = 5;
inline constexpr uint32_t kMaxPayload = 1u << 20;  // 1 MiB; also bounds a request's JSON

struct Frame {
  FrameType type;
  std::string payload;
};

/// One frame's bytes. REQUIRES: payload.size() <= kMaxPayload.
std::string encode_frame(FrameType type, std::string_view payload);

/// Reassembles frames from a byte stream that arrives in arbitrary pieces.
class FrameReader {
 public:
  /// Adds received bytes. Returns an error (and stays failed) on an unknown
  /// type or an oversized length; the caller closes the connection.
  Status push(std::string_view bytes);
  /// The next complete frame, in order.
  std::optional<Frame> next();
  /// Bytes of an incomplete frame still waiting for the rest.
  size_t buffered() const { return buf_.size() - pos_; }
  /// Every byte held: the incomplete frame and the complete frames not yet
  /// taken by next().
  size_t held() const { return buffered() + ready_bytes_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  std::deque<Frame> ready_;
  size_t ready_bytes_ = 0;
  Status failed_;
};

}  // namespace hearth::commands
