#include "commands/protocol.h"

namespace hearth::commands {

namespace {

bool known_type(uint8_t t) { return t >= 1 && t <= 6; }

}  // namespace

std::string encode_frame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeader + payload.size());
  auto n = static_cast<uint32_t>(payload.size());
  out += static_cast<char>(type);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  out.append(payload);
  return out;
}

Status FrameReader::push(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  buf_.append(bytes);
  while (buf_.size() - pos_ >= kFrameHeader) {
    auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    if (!known_type(p[0])) {
      failed_ = Error{"protocol error: unknown frame type " + std::to_string(p[0])};
      return failed_;
    }
    uint32_t n = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | uint32_t{p[4]};
    if (n > kMaxPayload) {
      failed_ = Error{"protocol error: a frame of " + std::to_string(n) + " bytes is over the limit of " +
                      std::to_string(kMaxPayload)};
      return failed_;
    }
    if (buf_.size() - pos_ < kFrameHeader + n) break;
    ready_.push_back(Frame{static_cast<FrameType>(p[0]), buf_.substr(pos_ + kFrameHeader, n)});
    ready_bytes_ += n;
    pos_ += kFrameHeader + n;
  }
  // Drop consumed bytes once they dominate the buffer.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return {};
}

std::optional<Frame> FrameReader::next() {
  if (ready_.empty()) return std::nullopt;
  Frame f = std::move(ready_.front());
  ready_.pop_front();
  ready_bytes_ -= f.payload.size();
  return f;
}

}  // namespace hearth::commands
