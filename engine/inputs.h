// The payload of a run, checked against the workflow's [inputs] schema
// (JSON Schema, draft 7, through valijson) before the run starts.
#pragma once

#include <optional>
#include <string>
#include <vector>

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

/// One way a payload breaks [inputs], attributed to one declared input.
struct InputViolation {
  std::string input;                   // the input's name
  std::optional<nlohmann::json> value; // the value given; nullopt when it is missing
  std::string constraint;              // the keyword as written: `pattern = "^v"`, `required = true`
  std::string problem;                 // "must match the pattern ^v", "is required"
};

/// `payload` with the `default`s of missing inputs filled in.
nlohmann::json with_defaults(const nlohmann::json& schema, nlohmann::json payload);

/// Every declared input `payload` (defaults filled in) breaks, each with the
/// keyword of its schema that it breaks; empty when it conforms. A value that
/// breaks its schema only through keywords taken together is reported with
/// the validator's own words.
std::vector<InputViolation> input_violations(const nlohmann::json& schema, const nlohmann::json& payload);

/// Fills in `default`s of missing inputs and validates. On failure the
/// message lists every violation:
/// "input 'issue' is \"abc\": must be of type integer (type = \"integer\")".
Result<nlohmann::json> prepare_payload(const nlohmann::json& schema, nlohmann::json payload);

}  // namespace hearth::engine
