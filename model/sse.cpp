#include "model/sse.h"

#include <algorithm>
#include <charconv>

namespace hearth::model::sse {

bool LineDecoder::feed(std::string_view chunk, const std::function<void(std::string_view)>& on_line) {
  size_t start = 0;
  for (size_t i = 0; i < chunk.size(); ++i) {
    char c = chunk[i];
    if (c != '\r' && c != '\n') continue;
    if (c == '\n' && after_cr_ && i == start && partial_.empty()) {
      // The LF of a CRLF whose CR ended the previous line.
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    std::string_view piece = chunk.substr(start, i - start);
    if (partial_.empty()) {
      on_line(piece);
    } else {
      partial_.append(piece);
      on_line(partial_);
      partial_.clear();
    }
    after_cr_ = c == '\r';
    start = i + 1;
  }
  if (start < chunk.size()) {
    after_cr_ = false;
    if (partial_.size() + (chunk.size() - start) > max_line) return false;
    partial_.append(chunk.substr(start));
  }
  return true;
}

void LineDecoder::flush(const std::function<void(std::string_view)>& on_line) {
  if (!partial_.empty()) on_line(partial_);
  partial_.clear();
  after_cr_ = false;
}

bool Parser::feed(std::string_view chunk, const std::function<void(const Event&)>& on_event) {
  auto lines = [&](std::string_view bytes) {
    return lines_.feed(bytes, [&](std::string_view l) { line(l, on_event); });
  };
  if (at_start_) {
    // A byte-order mark may open the stream, itself split across chunks.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    size_t take = std::min(chunk.size(), kBom.size() - bom_.size());
    bom_.append(chunk.substr(0, take));
    chunk.remove_prefix(take);
    if (bom_.size() < kBom.size() && kBom.starts_with(bom_)) return true;  // need more bytes
    at_start_ = false;
    std::string head = std::move(bom_);
    if (head != kBom && !lines(head)) return false;  // not a BOM: the bytes are data
  }
  return lines(chunk);
}

void Parser::line(std::string_view l, const std::function<void(const Event&)>& on_event) {
  if (l.empty()) {
    if (has_fields_) {
      Event e;
      e.event = std::move(event_);
      if (has_data_) {
        data_.pop_back();  // the "\n" after the last data line
        e.data = std::move(data_);
      }
      e.id = last_id_;
      data_.clear();
      event_.reset();
      has_fields_ = has_data_ = false;
      on_event(e);
    }
    return;
  }
  if (l.front() == ':') return;  // a comment (keep-alive)
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_ = has_fields_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
    has_fields_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  } else if (field == "retry") {
    long ms = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && end == value.data() + value.size() && !value.empty()) retry_ms_ = ms;
  }
  // Any other field is ignored, as the standard requires.
}

}  // namespace hearth::model::sse
