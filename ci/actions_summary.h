// The job summary ($GITHUB_STEP_SUMMARY) of the runs `hearth ci` did, and
// the `result` step output: both built from what the store recorded.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ci/actions_mermaid.h"
#include "engine/store.h"

namespace hearth::ci {

/// One run as the store has it after `hearth ci` is done with it.
struct RunReport {
  engine::RunRecord run;
  std::vector<engine::StepRecord> steps;
  std::vector<engine::EventRecord> events;  // for token usage, when steps report it
  std::map<std::string, StepShape> shapes;  // names and needs, from the run's workflow snapshot
  bool resumed = false;                     // this job attempt continued an earlier one
  bool reused = false;                      // already succeeded: nothing ran in this attempt
};

/// Reads the run, its steps and events, and the steps' names and needs from
/// the workflow snapshot the run started with (none when that no longer
/// loads: the diagrams then show the steps without edges). The error names
/// the run.
Result<RunReport> load_report(engine::Store& store, const std::string& run_id);

/// The run's result: {"run_id", "workflow", "status", "steps": {id: {"status",
/// "outputs", "result"}}}; "result" (the validated result of a skill or
/// prompt step) only for steps that have one.
nlohmann::json run_result(const RunReport& r);

/// Markdown for the job summary: per run a heading with its status, a table of
/// steps (status, attempts, duration, tokens when any step reported usage),
/// the failure reason, a Mermaid graph of the steps and a Mermaid Gantt chart
/// of when they ran (actions_mermaid.h), and the result as JSON in a
/// collapsed block.
std::string render_summary(const std::vector<RunReport>& reports);

}  // namespace hearth::ci
