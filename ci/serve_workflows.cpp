#include "ci/serve_workflows.h"

#include <filesystem>
#include <iostream>

#include "workflows/loader.h"
#include "workflows/triggers.h"

namespace hearth::ci {

void WorkflowSet::refresh(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && ever_ && now - checked_ < std::chrono::seconds(1)) return;
  ever_ = true;
  checked_ = now;
  std::map<std::string, Entry> next;
  for (auto& path : workflows::workflow_files(repo_)) {
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(path, ec);
    auto size = std::filesystem::file_size(path, ec);
    if (ec) continue;
    auto old = files_.find(path);
    if (old != files_.end() && old->second.mtime == mtime && old->second.size == size) {
      next.emplace(path, std::move(old->second));
      continue;
    }
    Entry e{mtime, size, std::nullopt};
    auto loaded = workflows::load_workflow_file(path);
    if (loaded.ok()) {
      e.workflow = std::move(*loaded.workflow);
    } else {
      for (auto& err : loaded.errors) std::cerr << "hearth serve: " << err << "\n";
      std::cerr << "hearth serve: " << path << " is left out until it is fixed\n";
    }
    next.emplace(path, std::move(e));
  }
  files_ = std::move(next);
}

std::vector<const workflows::Workflow*> WorkflowSet::matching(const std::string& event, const std::string& action) {
  refresh();
  std::vector<const workflows::Workflow*> out;
  for (auto& [path, e] : files_)
    if (e.workflow && workflows::starts_on(*e.workflow, event, action)) out.push_back(&*e.workflow);
  return out;
}

const workflows::Workflow* WorkflowSet::find(const std::string& path) {
  refresh();
  auto it = files_.find(path);
  return it != files_.end() && it->second.workflow ? &*it->second.workflow : nullptr;
}

}  // namespace hearth::ci
