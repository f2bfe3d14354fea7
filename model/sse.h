// Server-Sent Events (the `text/event-stream` format of the WHATWG HTML
// standard, section 9.2), decoded incrementally from network chunks.
//
// Both model providers stream their replies as SSE. Bytes arrive in arbitrary
// chunks: a line, a CRLF pair or a UTF-8 sequence may be split anywhere. The
// decoder works on bytes (CR and LF never occur inside a UTF-8 sequence), so
// splits need no special care and the data is passed through unchanged.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::model::sse {

/// Splits a byte stream into lines. CR, LF and CRLF each end a line; a CRLF
/// split across two chunks is one line end. Lines are delivered without
/// their terminator.
class LineDecoder {
 public:
  /// Delivers every line completed by `chunk`. Returns false (and delivers
  /// nothing more) when an unterminated line grows past `max_line` bytes.
  bool feed(std::string_view chunk, const std::function<void(std::string_view)>& on_line);
  /// Delivers the unterminated rest, if any, as a final line.
  void flush(const std::function<void(std::string_view)>& on_line);
  /// Whether an unterminated line is buffered.
  bool has_partial() const { return !partial_.empty(); }

  /// Longest line accepted (a hostile server must not exhaust memory).
  size_t max_line = 16u << 20;

 private:
  std::string partial_;
  bool after_cr_ = false;  // the last byte seen was CR: a following LF is part of it
};

/// One dispatched event.
struct Event {
  std::optional<std::string> event;  // the `event:` field; nullopt when absent
  std::string data;                  // `data:` lines joined with "\n"
  std::string id;                    // the last `id:` seen on the stream
};

/// Decodes an event stream. An event is dispatched by the blank line that
/// ends it. Departure from the standard, shared with the official SDKs: an
/// event that has an `event:` field but no data is dispatched (with empty
/// data) rather than dropped, because providers send `event: ping` that way.
/// An event not ended by a blank line when the stream ends is never
/// dispatched: the caller learns the stream was cut (see pending()).
class Parser {
 public:
  /// Feeds bytes; calls `on_event` for each event they complete. Returns
  /// false when a line exceeds the line limit (the stream is then unusable).
  bool feed(std::string_view chunk, const std::function<void(const Event&)>& on_event);
  /// Whether fields of an undispatched event (or an unterminated line) are
  /// buffered: at the end of the stream this means it was cut short.
  bool pending() const { return has_fields_ || lines_.has_partial(); }
  /// The `retry:` reconnection time last announced, in milliseconds.
  std::optional<long> retry_ms() const { return retry_ms_; }

 private:
  void line(std::string_view l, const std::function<void(const Event&)>& on_event);

  LineDecoder lines_;
  std::string data_;
  std::optional<std::string> event_;
  std::string last_id_;
  std::optional<long> retry_ms_;
  bool has_fields_ = false;
  bool has_data_ = false;
  std::string bom_;
  bool at_start_ = true;  // a UTF-8 BOM is skipped only at the very start
};

}  // namespace hearth::model::sse
