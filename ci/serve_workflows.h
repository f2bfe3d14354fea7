// The workflows `hearth serve` can start: <repo>/.hearth/workflows/*.toml,
// loaded once and reloaded when a file changes (checked at most once a
// second, when a delivery arrives), so a push that edits a workflow takes
// effect without a restart.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "workflows/workflow.h"

namespace hearth::ci {

class WorkflowSet {
 public:
  explicit WorkflowSet(std::string repo) : repo_(std::move(repo)) {}

  /// Re-reads the folder if the last look was over a second ago (or `force`).
  /// A file that does not load is left out and its errors printed to stderr
  /// once per change.
  void refresh(bool force = false);

  /// Workflows whose `[on] github` matches, in file-name order.
  std::vector<const workflows::Workflow*> matching(const std::string& event, const std::string& action);

  /// The loaded workflow at `path`, or null when it is gone or invalid.
  const workflows::Workflow* find(const std::string& path);

 private:
  struct Entry {
    std::filesystem::file_time_type mtime;
    uintmax_t size = 0;
    std::optional<workflows::Workflow> workflow;
  };
  std::string repo_;
  std::map<std::string, Entry> files_;
  std::chrono::steady_clock::time_point checked_{};
  bool ever_ = false;
};

}  // namespace hearth::ci
