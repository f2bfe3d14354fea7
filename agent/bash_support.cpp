#include "agent/bash_support.h"

#include <cstring>

#include "agent/tool_support.h"

namespace hearth::agent {

namespace {

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Drops a UTF-8 character cut by the end of `s` (at most 3 bytes).
std::string_view trim_cut_end(std::string_view s) {
  size_t n = s.size(), back = 0;
  while (back < 3 && back < n && continuation(static_cast<unsigned char>(s[n - 1 - back]))) ++back;
  if (back < n) {
    auto lead = static_cast<unsigned char>(s[n - 1 - back]);
    size_t len = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
    if (len > back + 1) return s.substr(0, n - 1 - back);
  }
  return s;
}

// Drops continuation bytes at the start of `s` (a character cut by the seam).
std::string_view trim_cut_start(std::string_view s) {
  size_t i = 0;
  while (i < 3 && i < s.size() && continuation(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

Result<BashArgs> parse_bash_args(const nlohmann::json& args) {
  detail::Args a("bash", args, {"command", "timeout_ms"});
  auto command = a.string("command", true);
  auto timeout = a.integer("timeout_ms", 1, kBashMaxTimeoutMs);
  if (!a.ok()) return Error{a.error().text};
  if (command->find_first_not_of(" \t\r\n") == std::string::npos) return Error{"bash: field 'command' is empty"};
  return BashArgs{std::move(*command), timeout ? static_cast<long>(*timeout) : kBashDefaultTimeoutMs};
}

void BashOutput::append(std::string_view chunk) {
  total_ += chunk.size();
  size_t head_room = cap_ / 2 > head_.size() ? cap_ / 2 - head_.size() : 0;
  size_t to_head = std::min(head_room, chunk.size());
  head_.append(chunk.substr(0, to_head));
  chunk.remove_prefix(to_head);
  if (chunk.empty()) return;
  // The tail keeps the last cap - cap/2 bytes; trimmed in bulk, not per chunk.
  size_t tail_cap = cap_ - cap_ / 2;
  tail_.append(chunk);
  if (tail_.size() > 2 * tail_cap) tail_.erase(0, tail_.size() - tail_cap);
}

std::string BashOutput::text() const {
  size_t tail_cap = cap_ - cap_ / 2;
  if (total_ <= cap_) return detail::valid_utf8(head_ + tail_);
  std::string_view tail = tail_;
  if (tail.size() > tail_cap) tail.remove_prefix(tail.size() - tail_cap);
  std::string_view head = trim_cut_end(head_);
  tail = trim_cut_start(tail);
  uint64_t omitted = total_ - head.size() - tail.size();
  return detail::valid_utf8(head) + "\n[... " + std::to_string(omitted) + " bytes omitted ...]\n" +
         detail::valid_utf8(tail);
}

ToolResult bash_result(const BashOutput& output, const BashEnd& end, const std::string& note) {
  std::string text = note.empty() ? std::string() : note + "\n";
  std::string out = output.text();
  text += out.empty() ? std::string("(no output)") : out;
  if (text.back() != '\n') text += '\n';
  if (end.cancelled) return {text + "[cancelled: the command's process group was killed]", true};
  if (end.timed_out) {
    return {text + "[timed out after " + std::to_string(end.timeout_ms) + " ms: the command's process group was killed]",
            true};
  }
  if (end.signal != 0) {
    const char* name = sigabbrev_np(end.signal);
    return {text + "[killed by signal " + std::to_string(end.signal) + (name ? " (SIG" + std::string(name) + ")" : "") +
                "]",
            false};
  }
  return {text + "[exit code " + std::to_string(end.exit_code) + "]", false};
}

}  // namespace hearth::agent
