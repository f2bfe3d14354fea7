// The one file that uses valijson; its exceptions stop here.
#include "engine/inputs.h"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "util/json_limits.h"

namespace hearth::engine {

namespace {

Result<std::shared_ptr<valijson::Schema>> compile(const nlohmann::json& schema) {
  auto compiled = std::make_shared<valijson::Schema>();
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(schema);
    parser.populateSchema(adapter, *compiled);
  } catch (const std::exception& e) {
    return Error{std::string("the [inputs] schema is not valid JSON Schema: ") + e.what()};
  }
  return compiled;
}

// valijson's context is a path like ["<root>", "[issue]"]; make it "input 'issue'".
std::string describe_context(const std::vector<std::string>& context) {
  std::string path;
  for (size_t i = 1; i < context.size(); ++i) {
    std::string part = context[i];
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') part = part.substr(1, part.size() - 2);
    if (part.size() >= 2 && part.front() == '"' && part.back() == '"') part = part.substr(1, part.size() - 2);
    path += (path.empty() ? "" : ".") + part;
  }
  return path.empty() ? "the payload" : "input '" + path + "'";
}

// An input declared `type = "integer"` must hold a JSON integer, written
// without a fraction or exponent: the loader lets such an input into shell
// arithmetic unchecked (workflows/loader_run.h), so its text must be digits.
// JSON Schema alone would accept 1.0 (draft 6 and later call it an integer).
Status check_integer_inputs(const nlohmann::json& schema, const nlohmann::json& payload) {
  auto props = schema.find("properties");
  if (props == schema.end() || !props->is_object()) return {};
  for (auto& [name, prop] : props->items()) {
    if (!prop.is_object() || prop.value("type", nlohmann::json()) != "integer") continue;
    auto v = payload.find(name);
    if (v == payload.end() || v->is_null() || v->is_number_integer()) continue;
    std::string shown = v->dump();
    if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
    return Error{"the payload does not match the workflow's [inputs]:\n  input '" + name +
                 "': must be an integer (type = \"integer\"), not " + shown};
  }
  return {};
}

}  // namespace

Status check_inputs_schema(const nlohmann::json& schema) {
  auto compiled = compile(schema);
  return compiled.ok() ? Status{} : Status{compiled.error()};
}

Result<nlohmann::json> coerce_input(const nlohmann::json& schema, const std::string& key, const std::string& value) {
  std::string type;
  if (auto props = schema.find("properties"); props != schema.end() && props->contains(key)) {
    const auto& p = (*props)[key];
    if (p.contains("type") && p["type"].is_string()) type = p["type"];
  }
  auto bad = [&](const std::string& what) {
    return Error{"--input " + key + "=" + value + ": input '" + key + "' is " + what};
  };
  if (type == "integer") {
    try {
      size_t used = 0;
      long long v = std::stoll(value, &used);
      if (used == value.size()) return nlohmann::json(v);
    } catch (...) {
    }
    return bad("an integer");
  }
  if (type == "number") {
    try {
      size_t used = 0;
      double v = std::stod(value, &used);
      if (used == value.size()) return nlohmann::json(v);
    } catch (...) {
    }
    return bad("a number");
  }
  if (type == "boolean") {
    if (value == "true") return nlohmann::json(true);
    if (value == "false") return nlohmann::json(false);
    return bad("a boolean (true or false)");
  }
  if (type == "object" || type == "array") {
    std::string why;
    auto v = parse_untrusted_json(value, &why);
    if (!v) return bad("JSON (" + type + ") but the value does not parse: " + why);
    return *v;
  }
  return nlohmann::json(value);
}

Result<nlohmann::json> prepare_payload(const nlohmann::json& schema, nlohmann::json payload) {
  if (payload.is_null()) payload = nlohmann::json::object();
  if (!payload.is_object()) return Error{"the payload must be a JSON object, not " + std::string(payload.type_name())};
  if (auto props = schema.find("properties"); props != schema.end() && props->is_object()) {
    for (auto& [name, prop] : props->items())
      if (!payload.contains(name) && prop.is_object() && prop.contains("default")) payload[name] = prop["default"];
  }
  auto compiled = compile(schema);
  if (!compiled) return compiled.error();
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(payload);
  bool valid = false;
  try {
    valid = validator.validate(**compiled, target, &results);
  } catch (const std::exception& e) {
    return Error{std::string("cannot validate the payload: ") + e.what()};
  }
  if (valid) {
    if (auto s = check_integer_inputs(schema, payload); !s.ok()) return s.error();
    return payload;
  }
  std::string message = "the payload does not match the workflow's [inputs]:";
  valijson::ValidationResults::Error err;
  std::string last;
  while (results.popError(err)) {
    std::string line = describe_context(err.context) + ": " + err.description;
    if (line == last) continue;
    message += "\n  " + line;
    last = line;
  }
  return Error{message};
}

}  // namespace hearth::engine
