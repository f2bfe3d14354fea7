// The words of run and step statuses, for the store, JSON and the command
// line. The enums are the public ones (hearth/engine.h), which the engine
// uses too. Compiled into the engine's library and into libhearth, which
// exports to_string (api/meson.build).
#include "engine/statuses.h"

namespace hearth {

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::running: return "running";
    case RunStatus::succeeded: return "succeeded";
    case RunStatus::failed: return "failed";
    case RunStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::pending: return "pending";
    case StepStatus::running: return "running";
    case StepStatus::waiting: return "waiting";
    case StepStatus::succeeded: return "succeeded";
    case StepStatus::failed: return "failed";
    case StepStatus::skipped: return "skipped";
    case StepStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

namespace engine {

RunStatus run_status_from(std::string_view word) {
  for (auto s : {RunStatus::running, RunStatus::succeeded, RunStatus::cancelled})
    if (word == to_string(s)) return s;
  return RunStatus::failed;
}

StepStatus step_status_from(std::string_view word) {
  for (auto s : {StepStatus::pending, StepStatus::running, StepStatus::waiting, StepStatus::succeeded,
                 StepStatus::skipped, StepStatus::cancelled})
    if (word == to_string(s)) return s;
  return StepStatus::failed;
}

}  // namespace engine
}  // namespace hearth
