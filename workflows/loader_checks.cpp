// What needs the whole file read: unknown and cyclic needs, and the
// contexts and steps each expression reads (the Loader class: loader_impl.h).
#include <algorithm>
#include <functional>

#include "workflows/loader_impl.h"
#include "workflows/suggest.h"

namespace hearth::workflows {

namespace {

// Contexts an expression may read, by where it appears.
const std::vector<std::string> kStepContexts = {"inputs", "env", "steps", "run"};
// What `steps.<id>` holds for a later step (engine/run.cpp builds it).
const std::vector<std::string> kStepProperties = {"status", "outputs", "exit-code", "result"};
const std::vector<std::string> kWorkflowContexts = {"inputs", "run"};

}  // namespace

void Loader::check_graph() {
  std::vector<std::string> ids;
  for (size_t i = 0; i < wf_.steps.size(); ++i) {
    ids.push_back(wf_.steps[i].id);
    index_.emplace(wf_.steps[i].id, i);  // the first of duplicates (already reported)
  }
  for (auto& s : wf_.steps) {
    for (auto& n : s.needs) {
      if (n == s.id) error(s.location, "step '" + s.id + "' needs itself");
      else if (!index_.count(n))
        error(s.location, "step '" + s.id + "' needs unknown step '" + n + "'" + did_you_mean(n, ids));
    }
  }
  if (!errors_.empty()) return;
  // Depth-first search; a back edge is a cycle, reported with its path.
  std::vector<int> state(wf_.steps.size(), 0);  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::function<bool(int)> visit = [&](int i) {
    state[i] = 1;
    stack.push_back(wf_.steps[i].id);
    for (auto& n : wf_.steps[i].needs) {
      int j = static_cast<int>(index_.at(n));
      if (state[j] == 1) {
        auto from = std::find(stack.begin(), stack.end(), n);
        std::string path;
        for (auto it = from; it != stack.end(); ++it) path += *it + " -> ";
        error(wf_.steps[j].location, "cycle in 'needs': " + path + n);
        return true;
      }
      if (state[j] == 0 && visit(j)) return true;
    }
    stack.pop_back();
    state[i] = 2;
    return false;
  };
  for (size_t i = 0; i < wf_.steps.size(); ++i)
    if (state[i] == 0 && visit(static_cast<int>(i))) return;
  graph_ok_ = true;  // no unknown needs, no cycle
}

bool Loader::needs_transitively(const std::string& step, const std::string& other) {
  std::vector<char> seen(wf_.steps.size(), 0);
  std::vector<size_t> todo = {index_.at(step)};
  size_t target = index_.at(other);
  while (!todo.empty()) {
    size_t i = todo.back();
    todo.pop_back();
    for (auto& n : wf_.steps[i].needs) {
      size_t j = index_.at(n);
      if (j == target) return true;
      if (!seen[j]) {
        seen[j] = 1;
        todo.push_back(j);
      }
    }
  }
  return false;
}

void Loader::check_expression(const expr::Expression& e, Location loc, const std::string& what, const Step* step) {
  const auto& allowed = step ? kStepContexts : kWorkflowContexts;
  for (auto& c : e.context_refs()) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end())
      error(loc, "unknown context '" + c + "' in " + what + did_you_mean(c, allowed) + "; available here: " +
                     join(allowed));
  }
  if (!step) return;
  for (auto& r : e.step_refs()) {
    if (!index_.count(r)) {
      std::vector<std::string> ids;
      for (auto& s : wf_.steps) ids.push_back(s.id);
      error(loc, what + " reads unknown step '" + r + "'" + did_you_mean(r, ids));
    } else if (r != step->id && graph_ok_ && !needs_transitively(step->id, r)) {
      error(loc, what + " reads steps." + r + " but step '" + step->id + "' does not need '" + r +
                     "': add it to 'needs' so it has finished first");
    } else if (r == step->id) {
      error(loc, what + " reads its own step '" + r + "'");
    }
  }
  for (auto& [id, prop] : e.step_properties()) {
    if (index_.count(id) && std::find(kStepProperties.begin(), kStepProperties.end(), prop) == kStepProperties.end())
      error(loc, what + " reads steps." + id + "." + prop + ", which a step does not have" +
                     did_you_mean(prop, kStepProperties) + "; a step has " + join(kStepProperties));
  }
}

void Loader::check_template(const TemplatedString& t, const std::string& what, const Step* step) {
  for (auto& p : t.parsed.parts)
    if (p.expr) check_expression(*p.expr, t.location, what, step);
}

void Loader::check_expressions() {
  if (!errors_.empty() && !graph_ok_) return;  // graph unknown: step checks would mislead
  for (auto& v : wf_.env) check_template(v.value, "env '" + v.name + "'", nullptr);
  // Each step's run or prompt template, by step id (in the order read).
  std::unordered_map<std::string_view, std::vector<const TemplatedString*>> templates;
  for (auto& [id, tpl] : step_templates_) templates[id].push_back(&tpl);
  for (auto& s : wf_.steps) {
    std::string where = "step '" + s.id + "'";
    if (s.if_expr) check_expression(*s.if_expr, s.if_location, "'if' of " + where, &s);
    for (auto& v : s.env) check_template(v.value, "env '" + v.name + "' of " + where, &s);
    if (s.working_directory) check_template(*s.working_directory, "'working-directory' of " + where, &s);
    if (auto found = templates.find(s.id); found != templates.end())
      for (auto* tpl : found->second) check_template(*tpl, (s.agent ? "'prompt' of " : "'run' of ") + where, &s);
    if (s.agent)
      for (auto& v : s.agent->with) check_template(v.value, "'with' " + v.name + " of " + where, &s);
  }
}

}  // namespace hearth::workflows
