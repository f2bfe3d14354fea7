// hearth::Workflow and loading (public API) over workflows::load_*.
#include "hearth/workflow.h"

#include "api/workflow_data.h"
#include "workflows/loader.h"
#include "workflows/triggers.h"

namespace hearth {

namespace {

LoadResult wrap(workflows::LoadResult r) {
  LoadResult out;
  out.errors = std::move(r.errors);
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

LoadResult load_workflow(const std::string& path) { return wrap(workflows::load_workflow_file(path)); }

LoadResult load_workflow_text(std::string_view text, const std::string& name) {
  return wrap(workflows::load_workflow_text(text, name));
}

}  // namespace hearth
