// Workflow files for tests, written from a list of steps: a test gives each
// step's id, needs and command on one line instead of spelling out its
// [[steps]] table, and sees the shape of the graph at a glance.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::testing {

/// One [[steps]] table. `more` holds any further keys as TOML lines
/// (`if = "failure()"`, `retry = { attempts = 3 }`), written before `run`;
/// an empty `run` writes no run key (an agent step).
struct StepToml {
  std::string id;
  std::vector<std::string> needs = {};
  std::string run = "";
  std::string more = "";
};

/// The TOML of a workflow: `head` as given (top-level keys and tables such as
/// [on] or [inputs]), then one [[steps]] table per step, in order. Values are
/// written as JSON strings and arrays, which TOML reads as basic strings and
/// arrays: `run` is the shell text exactly as the step gets it.
inline std::string workflow_toml(const std::vector<StepToml>& steps, const std::string& head = "") {
  std::string out = head;
  auto end_line = [&out] {
    if (!out.empty() && out.back() != '\n') out += '\n';
  };
  end_line();
  for (const auto& s : steps) {
    out += "[[steps]]\nid = " + nlohmann::json(s.id).dump() + "\n";
    if (!s.needs.empty()) out += "needs = " + nlohmann::json(s.needs).dump() + "\n";
    out += s.more;
    end_line();
    if (!s.run.empty()) out += "run = " + nlohmann::json(s.run).dump() + "\n";
  }
  return out;
}

/// The head of a workflow named `name` that starts on the GitHub events
/// `events` ("push", "issues.opened"), for workflow_toml().
inline std::string github_head(const std::string& name, const std::vector<std::string>& events) {
  return "name = " + nlohmann::json(name).dump() + "\n[on]\ngithub = " + nlohmann::json(events).dump() + "\n";
}

/// A [sandbox] table choosing the sandbox `kind` ("local", "namespace").
inline std::string sandbox_head(const std::string& kind) { return "[sandbox]\nkind = " + nlohmann::json(kind).dump() + "\n\n"; }

/// The head of a workflow whose agent steps talk to the stand-in model
/// (tests/support/model_server.h) from the local sandbox.
inline std::string local_agent_head() { return sandbox_head("local") + "[model]\nname = \"anthropic/claude-stand-in\"\n\n"; }

/// A [commands.<name>] table: the host program `exec`, granted the argument
/// patterns `allow`.
inline std::string command_toml(const std::string& name, const std::string& exec, const std::vector<std::string>& allow) {
  return "[commands." + name + "]\nexec = " + nlohmann::json(exec).dump() + "\nallow = " + nlohmann::json(allow).dump() + "\n";
}

}  // namespace hearth::testing
