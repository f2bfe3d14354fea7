// From a GitHub event to runs: the event's action, the payload a workflow
// receives, and the idempotent run id that lets a re-run job resume.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ci/actions_env.h"
#include "util/status.h"

namespace hearth::ci {

/// The payload's "action" ("opened", "created"...); empty when it has none
/// (push, workflow_dispatch).
std::string event_action(const nlohmann::json& event);

/// The payload a workflow's run gets: the event payload as it is; for
/// workflow_dispatch, the dispatch `inputs` are also set at the top level
/// (over any event field of the same name), each read by the type the
/// workflow's [inputs] declares (GitHub delivers them as strings). The error
/// names the input.
Result<nlohmann::json> run_payload(const std::string& event_name, const nlohmann::json& event,
                                   const nlohmann::json& inputs_schema);

/// The run id of `workflow` in this Actions job: the same for every attempt
/// of the job (so attempt 2 finds attempt 1's run), different for another
/// workflow run, job, workflow or repository. "gh-<run id>-<job>-<workflow>-<hash>",
/// cut to fit 128 characters, only [A-Za-z0-9._-]. With `fresh` (resume
/// off) the attempt number is part of it, so every attempt starts anew.
/// Empty when GITHUB_RUN_ID is not set (each invocation is a new run).
std::string derive_run_id(const ActionsEnv& env, const std::string& workflow, bool fresh);

}  // namespace hearth::ci
