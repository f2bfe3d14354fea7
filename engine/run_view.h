// Runs as users read them, in JSON: the shape of `hearth runs --json`,
// `hearth show --json` and the read endpoints of `hearth serve`.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "engine/store.h"

namespace hearth::engine {

/// UTC ISO 8601 with milliseconds: "2026-11-23T11:08:17.123Z".
std::string iso_utc(int64_t ms);

/// The status as a user should read it: a run recorded as running whose
/// engine is gone (no live lease) is "interrupted".
std::string shown_status(const RunRecord& r);

/// {id, workflow, workflow_path, workflow_hash, status, started_at,
/// finished_at, duration_ms, error}.
nlohmann::json run_summary_json(const RunRecord& r);

/// The summary plus the payload and every step with its attempts.
nlohmann::json run_detail_json(const RunRecord& r, const std::vector<StepRecord>& steps);

}  // namespace hearth::engine
