// Result schemas through valijson; its exceptions stop in this file.
#include "agent/result_schema.h"

#include <algorithm>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace hearth::agent {

struct ResultSchema::Compiled {
  valijson::Schema schema;
};

namespace {

// valijson's context is ["<root>", "[severity]", "[0]"]: every later part is
// a property name or an array index in brackets. A JSON Pointer does not
// distinguish the two either.
std::string pointer_of(const std::vector<std::string>& context) {
  std::string out;
  for (size_t i = 1; i < context.size(); ++i) {
    std::string_view part = context[i];
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') part = part.substr(1, part.size() - 2);
    out += '/';
    for (char c : part) {
      if (c == '~') out += "~0";
      else if (c == '/') out += "~1";
      else out += c;
    }
  }
  return out;
}

// valijson adds a line at the parent for every failing child ("Failed to
// validate against schema associated with property name 'x'."): noise when
// the child's own line is there.
bool is_summary(const std::string& message) {
  static const char* const kSummaries[] = {
      "Failed to validate against schema associated with property name",
      "Failed to validate against schema associated with pattern",
      "Failed to validate item #",
      "Failed to validate against additional properties schema",
  };
  return std::any_of(std::begin(kSummaries), std::end(kSummaries),
                     [&](const char* s) { return message.rfind(s, 0) == 0; });
}

bool has_deeper(const std::vector<SchemaViolation>& all, const std::string& pointer) {
  return std::any_of(all.begin(), all.end(), [&](const SchemaViolation& v) {
    return v.pointer.size() > pointer.size() && v.pointer.compare(0, pointer.size(), pointer) == 0 &&
           v.pointer[pointer.size()] == '/';
  });
}

}  // namespace

std::string describe(const std::vector<SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) {
    if (!out.empty()) out += '\n';
    out += (v.pointer.empty() ? std::string("(root)") : v.pointer) + ": " + v.message;
  }
  return out;
}

Result<ResultSchema> ResultSchema::compile(const nlohmann::json& schema) {
  if (!schema.is_object()) {
    return Error{std::string("the result schema must be a JSON object (a JSON Schema), not ") + schema.type_name()};
  }
  ResultSchema out;
  out.wrapped_ = schema.value("type", nlohmann::json()) != "object";
  nlohmann::json input = schema;
  if (out.wrapped_) {
    // Definitions move to the wrapper's root so "#/definitions/x" still resolves.
    nlohmann::json inner = schema;
    input = {{"type", "object"},
             {"properties", {{"result", nlohmann::json::object()}}},
             {"required", {"result"}},
             {"additionalProperties", false}};
    for (const char* key : {"definitions", "$defs"}) {
      if (inner.contains(key)) {
        input[key] = inner[key];
        inner.erase(key);
      }
    }
    inner.erase("$schema");
    input["properties"]["result"] = std::move(inner);
  }
  auto compiled = std::make_shared<Compiled>();
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(input);
    parser.populateSchema(adapter, compiled->schema);
  } catch (const std::exception& e) {
    return Error{std::string("the result schema is not valid JSON Schema (draft 7): ") + e.what()};
  }
  out.compiled_ = std::move(compiled);
  std::string description =
      "Submit the result of the task. Call it once, when the work is done; the arguments are checked against the "
      "result schema and, when they do not match, the errors come back so you can correct them and call it again.";
  if (out.wrapped_) description += " Put the result in the argument `result`.";
  out.tool_ = {kSubmitResultTool, std::move(description), std::move(input)};
  return out;
}

std::vector<SchemaViolation> ResultSchema::check(const nlohmann::json& arguments, nlohmann::json* result) const {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(arguments);
  std::vector<SchemaViolation> all;
  try {
    if (validator.validate(compiled_->schema, target, &results)) {
      if (result) *result = wrapped_ ? arguments.at("result") : arguments;
      return {};
    }
  } catch (const std::exception& e) {
    return {{"", std::string("the value could not be validated: ") + e.what()}};
  }
  valijson::ValidationResults::Error err;
  while (results.popError(err)) all.push_back({pointer_of(err.context), err.description});
  std::vector<SchemaViolation> out;
  for (const auto& v : all) {
    if (is_summary(v.message) && has_deeper(all, v.pointer)) continue;
    bool seen = std::any_of(out.begin(), out.end(), [&](const SchemaViolation& o) {
      return o.pointer == v.pointer && o.message == v.message;
    });
    if (!seen) out.push_back(v);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SchemaViolation& a, const SchemaViolation& b) { return a.pointer < b.pointer; });
  if (out.empty()) out.push_back({"", "the value does not match the result schema"});
  return out;
}

}  // namespace hearth::agent
