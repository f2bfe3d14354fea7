// hearth::Workflow and loading (public API) over workflows::load_*.
#include "hearth/workflow.h"

#include <algorithm>
#include <filesystem>

#include "api/workflow_data.h"
#include "agent/result_schema.h"
#include "engine/inputs.h"
#include "util/json_limits.h"
#include "workflows/duration.h"
#include "workflows/loader.h"
#include "workflows/skill.h"
#include "workflows/suggest.h"
#include "workflows/triggers.h"

namespace hearth {

namespace {

LoadResult wrap(workflows::LoadResult r) {
  LoadResult out;
  out.errors = std::move(r.errors);
  out.warnings = std::move(r.warnings);
  if (r.workflow && out.errors.empty())
    if (auto s = engine::check_inputs_schema(r.workflow->inputs); !s.ok())
      out.errors.push_back(r.workflow->path + ": " + s.message());
  if (r.workflow && out.errors.empty())
    out.workflow.emplace(std::make_shared<const detail::WorkflowData>(detail::WorkflowData{std::move(*r.workflow)}));
  return out;
}

}  // namespace

const std::string& Workflow::name() const { return data_->wf.name; }
const std::string& Workflow::description() const { return data_->wf.description; }
const std::string& Workflow::path() const { return data_->wf.path; }
const std::string& Workflow::hash() const { return data_->wf.hash; }
const std::vector<std::string>& Workflow::github_triggers() const { return data_->wf.on_github; }

std::vector<std::string> Workflow::step_ids() const {
  std::vector<std::string> ids;
  for (auto& s : data_->wf.steps) ids.push_back(s.id);
  return ids;
}

bool Workflow::starts_on(std::string_view event, std::string_view action) const {
  return workflows::starts_on(data_->wf, event, action);
}

Result<std::string> Workflow::input_value(const std::string& key, const std::string& text) const {
  auto v = engine::coerce_input(data_->wf.inputs, key, text);
  if (!v) return v.error();
  return v->dump();
}

std::vector<std::string> Workflow::input_names() const {
  std::vector<std::string> names;
  if (auto p = data_->wf.inputs.find("properties"); p != data_->wf.inputs.end() && p->is_object())
    for (auto& [name, prop] : p->items()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<InputProblem> Workflow::input_problems(const std::string& payload_json) const {
  std::string why;
  auto payload = parse_untrusted_json(payload_json, &why);
  if (!payload || !payload->is_object())
    return {InputProblem{"", "", "", payload ? "the payload must be a JSON object" : "the payload is not JSON: " + why}};
  std::vector<InputProblem> out;
  for (auto& v : engine::input_violations(data_->wf.inputs, engine::with_defaults(data_->wf.inputs, *payload))) {
    std::string value;
    if (v.value) {
      value = v.value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (value.size() > 80) value = value.substr(0, 77) + "...";
    }
    out.push_back({v.input, value, v.constraint, v.problem});
  }
  return out;
}

LoadResult load_workflow(const std::string& path) { return wrap(workflows::load_workflow_file(path)); }

LoadResult load_workflow_text(std::string_view text, const std::string& name) {
  return wrap(workflows::load_workflow_text(text, name));
}

Result<std::string> find_workflow(const std::string& repo, const std::string& arg) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) return arg;
  bool looks_like_path = arg.find('/') != std::string::npos || arg.ends_with(".toml");
  fs::path dir = fs::path(repo) / ".hearth" / "workflows";
  fs::path named = dir / (arg + ".toml");
  if (!looks_like_path && fs::is_regular_file(named, ec)) return named.string();
  std::vector<std::string> names;
  for (auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  if (looks_like_path) return Error{arg + ": no such workflow file"};
  std::string msg = "no workflow named '" + arg + "' in " + dir.string() + workflows::did_you_mean(arg, names);
  if (!names.empty()) {
    msg += "; available:";
    for (auto& n : names) msg += " " + n;
  }
  return Error{msg};
}

namespace {

// "file:line:col: " of a step's table.
std::string where(const workflows::Workflow& wf, const workflows::Location& at) {
  return wf.path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": ";
}

void check_agent_step(const workflows::Workflow& wf, const workflows::Step& step, const std::string& repo,
                      CheckResult& out) {
  const workflows::AgentStep& a = *step.agent;
  std::string at = where(wf, step.location) + "step '" + step.id + "': ";
  if (!a.skill.empty()) {
    auto found = workflows::find_skill(repo, a.skill);
    for (auto& e : found.errors) out.errors.push_back(at + e);
    for (auto& w : found.warnings) out.warnings.push_back(where(wf, step.location) + "warning: step '" + step.id + "': " + w);
  }
  if (a.result_schema) {
    std::string what = a.result_file.empty() ? "its inline result schema" : "result schema " + a.result_file;
    if (auto compiled = agent::ResultSchema::compile(*a.result_schema); !compiled)
      out.errors.push_back(at + what + ": " + compiled.message());
  }
}

}  // namespace

CheckResult check_workflow(const Workflow& workflow, const std::string& repo) {
  const workflows::Workflow& wf = workflow.data().wf;
  CheckResult out;
  for (auto& step : wf.steps)
    if (step.agent) check_agent_step(wf, step, repo, out);
  for (auto& [name, def] : wf.commands)
    if (def.host)
      out.warnings.push_back(where(wf, def.location) + "warning: [commands." + name +
                             "] is implemented by the program embedding Hearth (host = true); `hearth run` cannot "
                             "run a step granted it");
  for (auto& [name, def] : wf.tools)
    out.warnings.push_back(where(wf, def.location) + "warning: [tools." + name +
                           "] is implemented by the program embedding Hearth (host = true); `hearth run` cannot run "
                           "a step that offers it");
  return out;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  return workflows::did_you_mean(word, candidates);
}

std::string format_duration(std::chrono::milliseconds d) { return workflows::format_duration(d); }

Result<std::chrono::milliseconds> parse_duration(std::string_view text) { return workflows::parse_duration(text); }

}  // namespace hearth
