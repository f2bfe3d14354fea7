#include "engine/show_view.h"

#include "engine/run_view.h"
#include "workflows/toml_document.h"

namespace hearth::engine {

std::map<std::string, std::vector<std::string>> step_needs(const RunRecord& r) {
  std::map<std::string, std::vector<std::string>> out;
  auto doc = workflows::parse_toml(r.workflow_text, r.workflow_path);
  if (!doc || !doc->contains("steps") || !(*doc)["steps"].is_array()) return out;
  for (auto& step : (*doc)["steps"]) {
    if (!step.is_object() || !step.contains("id") || !step["id"].is_string()) continue;
    auto& needs = out[step["id"].get<std::string>()];
    if (auto n = step.find("needs"); n != step.end() && n->is_array())
      for (auto& id : *n)
        if (id.is_string()) needs.push_back(id.get<std::string>());
  }
  return out;
}

nlohmann::json run_show_json(const RunRecord& r, const std::vector<StepRecord>& steps) {
  nlohmann::json j = run_detail_json(r, steps);
  auto needs = step_needs(r);
  auto iso = [](nlohmann::json& obj, const char* key) {
    auto it = obj.find(key);
    if (it != obj.end() && it->is_number_integer()) *it = iso_utc(it->get<int64_t>());
  };
  for (auto& step : j["steps"]) {
    iso(step, "started_at");
    iso(step, "finished_at");
    for (auto& a : step["attempt_list"]) {
      iso(a, "started_at");
      iso(a, "finished_at");
    }
    auto it = needs.find(step.value("id", std::string()));
    step["needs"] = it == needs.end() ? nlohmann::json() : nlohmann::json(it->second);
  }
  return j;
}

}  // namespace hearth::engine
