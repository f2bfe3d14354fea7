// What every BashSession shares (bash.h): reading the model's arguments,
// keeping a command's output within kBashMaxOutputBytes (head and tail), and
// the result text the model reads. The host implementation (local_bash.h)
// uses it, and so will the sandbox one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/bash.h"
#include "util/status.h"

namespace hearth::agent {

/// One bash call's arguments, checked against bash_definition().
struct BashArgs {
  std::string command;
  long timeout_ms = kBashDefaultTimeoutMs;
};

/// The arguments, or an error naming the field ("bash: field 'timeout_ms' …").
Result<BashArgs> parse_bash_args(const nlohmann::json& args);

/// A command's merged output, kept within `cap` bytes however much arrives:
/// the first half and the last half, with the count of what fell between.
class BashOutput {
 public:
  explicit BashOutput(std::size_t cap = kBashMaxOutputBytes) : cap_(cap) {}
  void append(std::string_view chunk);
  std::uint64_t total() const { return total_; }
  /// The text for the model: everything when it fits, else head +
  /// "\n[... N bytes omitted ...]\n" + tail; always valid UTF-8 (a character
  /// cut at a seam is dropped whole, invalid bytes become U+FFFD).
  std::string text() const;

 private:
  std::size_t cap_;
  std::string head_, tail_;
  std::uint64_t total_ = 0;
};

/// How a command ended, for the result text.
struct BashEnd {
  int exit_code = 0;    // when signal == 0
  int signal = 0;       // killed by this signal
  bool timed_out = false;
  long timeout_ms = 0;
  bool cancelled = false;
};

/// The text and error flag for the model: `note` (if any) first, then the
/// output (or "(no output)"), then "[exit code N]" / "[killed by signal N
/// (NAME)]" / the timeout. A non-zero exit is not an error; a timeout or a
/// cancellation is.
ToolResult bash_result(const BashOutput& output, const BashEnd& end, const std::string& note = "");

}  // namespace hearth::agent
