#include "workflows/triggers.h"

#include <algorithm>
#include <filesystem>

namespace hearth::workflows {

bool trigger_matches(std::string_view trigger, std::string_view event, std::string_view action) {
  auto dot = trigger.find('.');
  if (dot == std::string_view::npos) return trigger == event;
  return trigger.substr(0, dot) == event && trigger.substr(dot + 1) == action;
}

bool starts_on(const Workflow& workflow, std::string_view event, std::string_view action) {
  return std::any_of(workflow.on_github.begin(), workflow.on_github.end(),
                     [&](const std::string& t) { return trigger_matches(t, event, action); });
}

std::vector<std::string> workflow_files(const std::string& repo) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  fs::path dir = fs::path(repo) / ".hearth" / "workflows";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".toml" && it->is_regular_file(ec)) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hearth::workflows
