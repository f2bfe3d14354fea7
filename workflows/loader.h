// Loading a workflow file: TOML text -> validated Workflow, or every problem
// found, each as "file:line:col: message".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "workflows/workflow.h"

namespace hearth::workflows {

/// One problem of a file at its place, the message without the
/// "path:line:col: " prefix (LoadResult's strings add it).
struct LoadError {
  Location at;
  std::string message;
};

struct LoadResult {
  std::optional<Workflow> workflow;  // set when errors is empty
  std::vector<std::string> errors;   // "path:line:col: message", in file order
  std::vector<std::string> warnings; // "path:line:col: warning: message": loads, but likely unsafe
  bool ok() const { return errors.empty(); }
};

/// Parses and validates `text` as read from `path` (used in messages and for
/// the default name). Checks TOML syntax, unknown keys (with "did you mean"),
/// value types, duplicate and malformed step ids, unknown and cyclic `needs`,
/// expressions (syntax, unknown contexts, `steps.X` read without needing X),
/// durations, and the inputs schema. Collects as many errors as it can.
LoadResult load_workflow_text(std::string_view text, const std::string& path);

/// Reads the file at `path` and loads it.
LoadResult load_workflow_file(const std::string& path);

}  // namespace hearth::workflows
