// Private to agent/: argument reading, text shaping and file I/O
// shared by the file tools. Not part of the harness's interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/tools.h"

namespace hearth::agent::detail {

/// Reads one tool's arguments; the first problem is kept and named by field.
class Args {
 public:
  /// `allowed`: every property of the tool's schema (others are refused).
  Args(std::string_view tool, const nlohmann::json& args, std::initializer_list<const char*> allowed);
  std::optional<std::string> string(const char* field, bool required);
  std::optional<std::int64_t> integer(const char* field, std::int64_t min, std::int64_t max);
  bool boolean(const char* field, bool fallback);
  bool ok() const { return error_.empty(); }
  ToolResult error() const { return {error_, true}; }

 private:
  void fail(std::string message);
  std::string tool_;
  const nlohmann::json& args_;
  std::string error_;
};

/// `s` with invalid UTF-8 replaced by U+FFFD; sets *changed when it was.
std::string valid_utf8(std::string_view s, bool* changed = nullptr);

/// Whether the start of a file looks binary (a NUL byte in the first 8 KiB).
bool looks_binary(std::string_view head);

/// How read_file() may stop early, for callers that skip such files anyway.
struct ReadFilter {
  bool skip_large = false;   // larger than max: return "" and set *large, reading nothing
  bool skip_binary = false;  // binary start: return the first chunk and set *binary
  bool* large = nullptr;
  bool* binary = nullptr;
  std::uint64_t* file_size = nullptr;  // set to the file's size when given
};

/// The file's contents, up to `max` bytes (+1 so the caller sees it is larger).
/// Opens non-blocking and refuses anything but a regular file. Errors name `rel`.
Result<std::string> read_file(const Workspace& ws, const std::string& rel, std::size_t max, ReadFilter filter = {});

/// Replaces the contents of `rel` (created with 0644 when missing, parent
/// directories made). Refuses non-regular files and files with several hard
/// links (writing would change the other names too).
Status write_file(const Workspace& ws, const std::string& rel, std::string_view content);

/// The tools, one per function.
ToolResult read_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& args);
ToolResult write_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& args);
ToolResult edit_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& args);
ToolResult glob_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& args);
ToolResult grep_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& args);

}  // namespace hearth::agent::detail
