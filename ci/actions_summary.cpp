#include "ci/actions_summary.h"

#include <algorithm>
#include <chrono>

#include "workflows/duration.h"
#include "workflows/loader.h"

namespace hearth::ci {

namespace {

const char* icon(StepStatus status) {
  switch (status) {
    case StepStatus::succeeded: return "✅";
    case StepStatus::failed: return "❌";
    case StepStatus::cancelled: return "⊘";
    case StepStatus::skipped: return "⏭️";
    case StepStatus::running:
    case StepStatus::waiting: return "⏳";
    case StepStatus::pending: break;
  }
  return "•";
}

const char* icon(RunStatus status) {
  switch (status) {
    case RunStatus::succeeded: return "✅";
    case RunStatus::failed: return "❌";
    case RunStatus::cancelled: return "⊘";
    case RunStatus::running: return "⏳";
  }
  return "•";
}

// Text inside a Markdown table cell: no line breaks, pipes escaped, HTML
// and Markdown punctuation made literal.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') out += ' ';
    else if (c == '|' || c == '\\' || c == '`' || c == '*' || c == '_' || c == '[' || c == ']' || c == '<' || c == '>')
      out += std::string("\\") + c;
    else out += c;
  }
  return out;
}

std::string duration(std::optional<int64_t> from, std::optional<int64_t> to) {
  if (!from || !to || *to < *from) return "";
  return workflows::format_duration(std::chrono::milliseconds(*to - *from));
}

// A fence longer than any run of backticks in `text`.
std::string fence_for(const std::string& text) {
  size_t longest = 0, run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return std::string(std::max<size_t>(3, longest + 1), '`');
}

// Token usage per step, summed over its attempts, from events whose data
// carries {"usage": {"input_tokens", "output_tokens"}} (skill steps).
std::map<std::string, std::pair<int64_t, int64_t>> usage_by_step(const std::vector<engine::EventRecord>& events) {
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  for (auto& e : events) {
    if (e.step_id.empty() || !e.data.contains("usage") || !e.data["usage"].is_object()) continue;
    auto& u = e.data["usage"];
    auto& slot = out[e.step_id];
    if (u.contains("input_tokens") && u["input_tokens"].is_number_integer()) slot.first += u["input_tokens"].get<int64_t>();
    if (u.contains("output_tokens") && u["output_tokens"].is_number_integer())
      slot.second += u["output_tokens"].get<int64_t>();
  }
  return out;
}

}  // namespace

Result<RunReport> load_report(engine::Store& store, const std::string& run_id) {
  RunReport r;
  auto run = store.load_run(run_id);
  if (!run) return run.error();
  r.run = std::move(*run);
  auto steps = store.load_steps(run_id);
  if (!steps) return steps.error();
  r.steps = std::move(*steps);
  auto events = store.load_events(run_id);
  if (!events) return events.error();
  r.events = std::move(*events);
  auto snapshot = workflows::load_workflow_text(r.run.workflow_text, r.run.workflow_path);
  if (snapshot.ok())
    for (auto& step : snapshot.workflow->steps) r.shapes[step.id] = StepShape{step.name, step.needs};
  return r;
}

nlohmann::json run_result(const RunReport& r) {
  nlohmann::json steps = nlohmann::json::object();
  for (auto& s : r.steps) {
    steps[s.id] = {{"status", to_string(s.status)}, {"outputs", s.outputs}};
    // Skill and prompt steps: the validated result, as `steps.<id>.result` reads it in the workflow.
    if (!s.result.is_null()) steps[s.id]["result"] = s.result;
  }
  return {{"run_id", r.run.id}, {"workflow", r.run.workflow}, {"status", to_string(r.run.status)}, {"steps", steps}};
}

std::string render_summary(const std::vector<RunReport>& reports) {
  std::string md;
  for (auto& r : reports) {
    md += "### " + std::string(icon(r.run.status)) + " " + cell(r.run.workflow) + ": " + to_string(r.run.status) + "\n\n";
    md += "Run `" + r.run.id + "`";
    if (auto d = duration(r.run.created_at, r.run.finished_at); !d.empty()) md += " · " + d;
    if (r.reused) md += " · already succeeded in an earlier attempt; nothing ran again";
    else if (r.resumed) md += " · resumed from an earlier attempt";
    md += "\n\n";
    if (!r.run.error.empty()) md += "> " + cell(r.run.error) + "\n\n";
    auto usage = usage_by_step(r.events);
    md += "| step | status | attempts | duration |";
    md += usage.empty() ? "\n|---|---|---|---|\n" : " tokens in | tokens out |\n|---|---|---|---|---:|---:|\n";
    int64_t total_in = 0, total_out = 0;
    for (auto& s : r.steps) {
      std::string status = std::string(icon(s.status)) + " " + to_string(s.status);
      if (!s.reason.empty() && s.status != StepStatus::succeeded) status += " (" + cell(s.reason) + ")";
      md += "| `" + s.id + "` | " + status + " | " + std::to_string(s.attempts) + " | " +
            duration(s.started_at, s.finished_at) + " |";
      if (!usage.empty()) {
        auto u = usage.count(s.id) ? usage.at(s.id) : std::pair<int64_t, int64_t>{0, 0};
        total_in += u.first;
        total_out += u.second;
        md += " " + std::to_string(u.first) + " | " + std::to_string(u.second) + " |";
      }
      md += "\n";
    }
    if (!usage.empty())
      md += "| **total** | | | | " + std::to_string(total_in) + " | " + std::to_string(total_out) + " |\n";
    md += "\n" + mermaid_flowchart(r.steps, r.shapes);
    if (std::string gantt = mermaid_gantt(r.steps, r.shapes); !gantt.empty()) md += "\n" + gantt;
    std::string json = run_result(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string fence = fence_for(json);
    md += "\n<details><summary>Result</summary>\n\n" + fence + "json\n" + json + "\n" + fence + "\n\n</details>\n\n";
  }
  return md;
}

}  // namespace hearth::ci
