// The payload of a run, checked against the workflow's [inputs] schema
// (JSON Schema, draft 7, through valijson) before the run starts.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace hearth::engine {

/// Checks that `schema` is a usable JSON Schema. The error names the input.
Status check_inputs_schema(const nlohmann::json& schema);

/// Turns `--input key=value` into a JSON value, guided by the declared type
/// of `key`: integer/number/boolean parse the text (with an error naming the
/// input when they cannot), object/array parse it as JSON, anything else
/// stays a string.
Result<nlohmann::json> coerce_input(const nlohmann::json& schema, const std::string& key, const std::string& value);

/// Fills in `default`s of missing inputs and validates. On failure the
/// message lists every violation: "input 'issue': expected integer, found string".
Result<nlohmann::json> prepare_payload(const nlohmann::json& schema, nlohmann::json payload);

}  // namespace hearth::engine
