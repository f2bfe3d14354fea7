// A step's result schema (JSON Schema, draft 7, through valijson) and the
// `submit_result` tool built from it. The tool's input schema IS the result
// schema when that describes an object (`"type": "object"`); any other result
// (a string, an array, a number…) is wrapped as the tool's one argument
// `result`, because every provider wants an object of arguments. Violations
// are reported as JSON Pointer + message, the pointer relative to the tool's
// arguments (so "/result/0" in the wrapped form): what the model sent.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/tools.h"
#include "util/status.h"

namespace hearth::agent {

/// One reason a value does not match a schema.
struct SchemaViolation {
  std::string pointer;  // JSON Pointer (RFC 6901) to the offending value; "" is the whole value
  std::string message;  // valijson's description
};

/// "/severity: Value type not permitted…" lines, one per violation.
std::string describe(const std::vector<SchemaViolation>& violations);

/// A compiled result schema. Cheap to share between threads for validation
/// (valijson schemas are immutable once built).
class ResultSchema {
 public:
  /// Compiles `schema` (draft 7). The error says why it is not usable
  /// ("the result schema is not valid JSON Schema: …").
  static Result<ResultSchema> compile(const nlohmann::json& schema);

  /// The `submit_result` tool definition sent to the model.
  const ToolDefinition& tool() const { return tool_; }
  /// Whether the result is wrapped as the argument `result`.
  bool wrapped() const { return wrapped_; }

  /// Checks the tool's arguments. On success, `*result` is the result (the
  /// arguments themselves, or their `result` when wrapped). Violations are
  /// sorted by pointer, without valijson's summary lines about a parent
  /// when a more precise one names a value inside it.
  std::vector<SchemaViolation> check(const nlohmann::json& arguments, nlohmann::json* result) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
  ToolDefinition tool_;
  bool wrapped_ = false;
};

/// The name of the result tool.
inline constexpr const char* kSubmitResultTool = "submit_result";

}  // namespace hearth::agent
