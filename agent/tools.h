// The agent's file tools: read, write, edit, glob, grep, working on the
// step's workspace directory on the host. Each tool takes the JSON argument
// object the model sent and returns text for the model plus an is_error flag;
// each has a JSON Schema of its input, sent to the model as the tool
// definition. Invalid arguments give an error naming the field.
//
// Every path stays inside the workspace (workspace.h): `..`, absolute paths
// and symlinks cannot lead out, whatever the agent planted. Files are opened
// non-blocking and only regular files are read or written (a FIFO cannot hang
// the engine). Results are always valid UTF-8 (invalid bytes become U+FFFD,
// with a note) and capped in size, with a marker saying what was left out.
//
// Pure filesystem work, no libuv: calls are synchronous and fast for normal
// repositories; the engine may run them on a worker thread (a FileTools is
// safe to use from several threads at once). See docs/skills.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/workspace.h"
#include "util/status.h"

namespace hearth::agent {

/// What a tool call gives back to the model.
struct ToolResult {
  std::string text;       // valid UTF-8
  bool is_error = false;  // sent as the tool result's error flag
};

/// A tool as declared to the model.
struct ToolDefinition {
  std::string name;
  std::string description;
  nlohmann::json input_schema;  // JSON Schema (draft 7 subset every provider accepts)
};

/// Caps that keep one tool result small and one call quick.
struct ToolLimits {
  std::size_t read_max_lines = 2000;           // lines per read when no limit is given (and at most)
  std::size_t read_max_bytes = 256 * 1024;     // bytes of file text per read result
  std::size_t line_max_chars = 2000;           // longer lines are cut, with a marker
  std::size_t edit_max_bytes = 16u << 20;      // larger files are not edited
  std::size_t write_max_bytes = 16u << 20;     // larger contents are refused
  std::size_t glob_max_results = 1000;
  std::size_t grep_max_results = 200;          // default max_results (the model may ask for up to 2000)
  std::size_t grep_file_max_bytes = 16u << 20; // larger files are skipped (and counted)
  std::size_t walk_max_entries = 200000;       // directory entries one glob/grep visits at most
};

/// The file tools of one workspace.
class FileTools {
 public:
  /// Opens the workspace at `root` (a directory on the host).
  static Result<FileTools> open(const std::string& root, ToolLimits limits = {}, WorkspaceOptions options = {});

  /// The definitions of read, write, edit, glob and grep, in that order.
  static const std::vector<ToolDefinition>& definitions();

  /// Whether `name` is one of these tools.
  static bool has(std::string_view name);

  /// Runs tool `name` with `args`. Never throws; an unknown tool, bad
  /// arguments or a failed operation come back as is_error results.
  ToolResult call(std::string_view name, const nlohmann::json& args) const;

  const Workspace& workspace() const { return ws_; }

  /// Makes `host_dir` readable (read, glob, grep; never write or edit) by
  /// absolute paths under `mount`: the skill's own folder when the
  /// workspace cannot show it (it lies in the hidden state directory).
  Status add_read_only(const std::string& host_dir, const std::string& mount);

 private:
  FileTools(Workspace ws, ToolLimits limits) : ws_(std::move(ws)), limits_(limits) {}
  Workspace ws_;
  ToolLimits limits_;
  std::vector<Workspace> read_only_;  // each with its own mount

};

}  // namespace hearth::agent
