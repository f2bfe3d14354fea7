// A run with its steps as users read it in JSON: `hearth show --json`,
// hearth::Engine::run() and `GET /runs/<id>` of `hearth serve` all give
// this one shape (docs/cli.md describes its fields).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/store.h"

namespace hearth::engine {

/// Each step's direct `needs`, by step id, as the run's workflow snapshot
/// declares them; empty when the snapshot does not parse as TOML.
std::map<std::string, std::vector<std::string>> step_needs(const RunRecord& r);

/// run_detail_json() with every time, the steps' and attempts' too, as the
/// run's own (UTC ISO 8601, null when not yet), and each step's `needs`
/// (null when the snapshot does not say).
nlohmann::json run_show_json(const RunRecord& r, const std::vector<StepRecord>& steps);

}  // namespace hearth::engine
