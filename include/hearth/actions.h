// The GitHub Actions step (part of libhearth's public API): what `hearth ci`
// does in a job. docs/github-actions.md is the user's side of it.
#pragma once

#include <string>

#include "hearth/export.h"

namespace hearth {

/// What the step is asked to do. Each empty setting is read from the
/// action's input of the same name (INPUT_WORKFLOW, INPUT_PAYLOAD,
/// INPUT_STATE-PATH, INPUT_RESUME, INPUT_MODEL), as the Action passes them.
struct ActionsStepOptions {
  std::string repo;        // absolute: the checked-out repository
  std::string state_path;  // the state database, unless `state_dir` (or its input) names a directory for it
  std::string workflow;    // only this workflow (name or glob), whatever its [on]
  std::string payload;     // JSON text or @file.json instead of $GITHUB_EVENT_PATH
  std::string state_dir;   // directory of the state database (state.db in it)
  std::string resume;      // "true" or "false": resume this job's unfinished runs on a re-run (default true)
  std::string model;       // model of skill and prompt steps, as StartOptions::model; a relative
                           // replay: cassette is taken from the current directory
  int jobs = 0;            // steps at once per run; 0: CPUs
};

/// Runs the workflows the job's event starts (or resumes them on a re-run of
/// the job) on a loop of its own, and reports the Actions way on stdout:
/// secrets masked before anything else is printed, each step's output in a
/// group, failures as annotations on the workflow's lines; then the step
/// outputs (run-id, status, result) and the job summary through the files
/// the runner names. SIGINT and SIGTERM cancel the runs. Reads the GITHUB_*
/// environment; blocks until every run has finished. Returns the exit code:
/// 0 all succeeded (or nothing started on this event), 1 a run failed,
/// 2 a workflow file, the payload or a setting is invalid, 130 cancelled.
HEARTH_API int run_actions_step(const ActionsStepOptions& options);

}  // namespace hearth
