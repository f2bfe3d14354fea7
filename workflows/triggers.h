// Which workflows an event starts. `[on] github = [...]` lists GitHub event
// names, each bare ("pull_request": every action) or with one action
// ("issues.opened"). Used by `hearth ci` and `hearth serve`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "workflows/workflow.h"

namespace hearth::workflows {

/// Whether `trigger` (one entry of `[on] github`) matches an event.
/// `action` is the payload's "action" field, empty when it has none (push).
/// A bare trigger matches every action; "event.action" matches that action
/// only. Comparison is exact (GitHub's names are lower case).
bool trigger_matches(std::string_view trigger, std::string_view event, std::string_view action);

/// Whether any of the workflow's `[on] github` entries matches.
bool starts_on(const Workflow& workflow, std::string_view event, std::string_view action);

/// The workflow files of a repository: <repo>/.hearth/workflows/*.toml,
/// sorted by name. Empty when the folder does not exist.
std::vector<std::string> workflow_files(const std::string& repo);

}  // namespace hearth::workflows
