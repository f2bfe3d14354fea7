// The one file that uses valijson; its exceptions stop here.
#include "engine/inputs.h"

#include <algorithm>

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

// Whether `value` conforms to `schema`; nullopt when the schema does not
// compile or validation throws. `first_error` gets the validator's first
// message on failure.
std::optional<bool> conforms(const nlohmann::json& schema, const nlohmann::json& value, std::string* first_error) {
  auto compiled = compile(schema);
  if (!compiled) return std::nullopt;
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(value);
  try {
    if (validator.validate(**compiled, target, &results)) return true;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  valijson::ValidationResults::Error err;
  if (first_error && results.popError(err)) *first_error = err.description;
  return false;
}

// Keywords that only mean something together are checked together.
const std::vector<std::vector<std::string>> kKeywordGroups = {
    {"properties", "patternProperties", "additionalProperties"},
    {"items", "additionalItems"},
    {"if", "then", "else"},
};
// Keywords that constrain nothing.
bool is_annotation(const std::string& k) {
  return k == "default" || k == "description" || k == "title" || k == "examples" || k == "$comment" ||
         k == "readOnly" || k == "writeOnly" || k == "$id" || k == "$schema" || k == "definitions";
}

std::string shown_value(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// What a keyword asks, as a user reads it.
std::string describe_keyword(const std::string& k, const nlohmann::json& v) {
  auto num = [](const nlohmann::json& n) { return shown_value(n); };
  auto list = [](const nlohmann::json& a) {
    std::string out;
    for (auto& e : a) out += (out.empty() ? "" : ", ") + shown_value(e);
    return out;
  };
  if (k == "type") return "must be of type " + (v.is_array() ? list(v) : v.is_string() ? v.get<std::string>() : num(v));
  if (k == "enum" && v.is_array()) return "must be one of " + list(v);
  if (k == "const") return "must be " + shown_value(v);
  if (k == "pattern" && v.is_string()) return "must match the pattern " + v.get<std::string>();
  if (k == "minimum") return "must be at least " + num(v);
  if (k == "maximum") return "must be at most " + num(v);
  if (k == "exclusiveMinimum") return "must be more than " + num(v);
  if (k == "exclusiveMaximum") return "must be less than " + num(v);
  if (k == "multipleOf") return "must be a multiple of " + num(v);
  if (k == "minLength") return "must be at least " + num(v) + " characters long";
  if (k == "maxLength") return "must be at most " + num(v) + " characters long";
  if (k == "minItems") return "must have at least " + num(v) + " items";
  if (k == "maxItems") return "must have at most " + num(v) + " items";
  if (k == "uniqueItems") return "must not repeat an item";
  if (k == "format" && v.is_string()) return "must be a valid " + v.get<std::string>();
  return "must satisfy " + k + " = " + shown_value(v);
}

// The violations of one input's value against its declared schema `prop`.
void violations_of(const std::string& name, const nlohmann::json& prop, const nlohmann::json& value,
                   std::vector<InputViolation>& out) {
  std::string whole_error;
  auto ok = conforms(prop, value, &whole_error);
  if (ok && *ok) return;
  size_t before = out.size();
  std::vector<std::string> done;
  for (auto& [k, v] : prop.items()) {
    if (is_annotation(k) || std::find(done.begin(), done.end(), k) != done.end()) continue;
    std::vector<std::string> group{k};
    for (auto& g : kKeywordGroups)
      if (std::find(g.begin(), g.end(), k) != g.end()) group = g;
    nlohmann::json part = nlohmann::json::object();
    for (auto& key : group)
      if (prop.contains(key)) part[key] = prop[key];
    done.insert(done.end(), group.begin(), group.end());
    std::string part_error;
    auto part_ok = conforms(part, value, &part_error);
    if (!part_ok || *part_ok) continue;
    std::string constraint, problem;
    for (auto& [key, kv] : part.items()) constraint += (constraint.empty() ? "" : ", ") + key + " = " + shown_value(kv);
    problem = part.size() == 1 ? describe_keyword(k, v) : part_error;
    out.push_back({name, value, constraint, problem});
  }
  if (out.size() == before)  // only the keywords together refuse it
    out.push_back({name, value, "the schema of input '" + name + "'", ok ? whole_error : "cannot be checked"});
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
    return Error{"--input " + key + "=" + value + ": input '" + key + "' must be " + what + " (type = \"" + type +
                 "\")"};
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
    if (!v) return bad("JSON text of an " + type + ", and this does not parse: " + why);
    return *v;
  }
  return nlohmann::json(value);
}

nlohmann::json with_defaults(const nlohmann::json& schema, nlohmann::json payload) {
  if (!payload.is_object()) return payload;
  if (auto props = schema.find("properties"); props != schema.end() && props->is_object()) {
    for (auto& [name, prop] : props->items())
      if (!payload.contains(name) && prop.is_object() && prop.contains("default")) payload[name] = prop["default"];
  }
  return payload;
}

std::vector<InputViolation> input_violations(const nlohmann::json& schema, const nlohmann::json& payload) {
  std::vector<InputViolation> out;
  if (!payload.is_object()) return out;
  if (auto req = schema.find("required"); req != schema.end() && req->is_array()) {
    for (auto& name : *req)
      if (name.is_string() && !payload.contains(name.get<std::string>()))
        out.push_back({name.get<std::string>(), std::nullopt, "required = true", "is required"});
  }
  auto props = schema.find("properties");
  if (props == schema.end() || !props->is_object()) return out;
  for (auto& [name, prop] : props->items()) {
    auto v = payload.find(name);
    if (v == payload.end() || !prop.is_object()) continue;
    violations_of(name, prop, *v, out);
  }
  if (out.empty()) {
    if (auto s = check_integer_inputs(schema, payload); !s.ok()) {
      for (auto& [name, prop] : props->items()) {
        auto v = payload.find(name);
        if (v != payload.end() && prop.is_object() && prop.value("type", nlohmann::json()) == "integer" &&
            v->is_number() && !v->is_number_integer())
          out.push_back({name, *v, "type = \"integer\"", "must be an integer written without a fraction or exponent"});
      }
    }
  }
  return out;
}

Result<nlohmann::json> prepare_payload(const nlohmann::json& schema, nlohmann::json payload) {
  if (payload.is_null()) payload = nlohmann::json::object();
  if (!payload.is_object()) return Error{"the payload must be a JSON object, not " + std::string(payload.type_name())};
  payload = with_defaults(schema, std::move(payload));
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
  auto violations = input_violations(schema, payload);
  for (auto& v : violations) {
    message += "\n  input '" + v.input + "' " + (v.value ? "is " + shown_value(*v.value) + ": " : "") + v.problem +
               " (" + v.constraint + ")";
  }
  if (!violations.empty()) return Error{message};
  // Nothing attributable to one input: the validator's own words.
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
