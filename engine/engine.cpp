#include "engine/engine.h"

#include <filesystem>

#include "engine/compiled_workflows.h"
#include "engine/ids.h"
#include "engine/inputs.h"
#include "engine/run.h"

namespace hearth::engine {

Engine::Engine(uv_loop_t* loop, Store& store, sandbox::Sandbox& sandbox, EngineOptions defaults, util::Clock* clock)
    : loop_(loop),
      store_(store),
      sandbox_(sandbox),
      defaults_(std::move(defaults)),
      scratch_root_((std::filesystem::path(store.local_dir()) / "tmp").string()),
      loop_clock_(loop),
      clock_(clock ? clock : &loop_clock_) {
  // Commits' fsyncs leave the loop thread (store_durable.cpp). Should the
  // log not open, every commit keeps its own fsync: slower, as safe.
  (void)store_.attach(loop_);
}

// The loop may go with the engine: the store fsyncs on its own from now on.
Engine::~Engine() { store_.detach(); }

void Engine::add_observer(Observer* observer) { observers_.push_back(observer); }

Result<std::string> Engine::start(const workflows::Workflow& workflow, nlohmann::json payload_in, StartOptions options,
                                  std::function<void(const RunResult&)> on_finished) {
  if (options.run_id.empty()) options.run_id = new_run_id();
  if (!valid_run_id(options.run_id))
    return Error{"invalid run id '" + options.run_id + "': use 1-128 letters, digits, '.', '_' or '-'"};
  auto exists = store_.run_exists(options.run_id);
  if (!exists) return exists.error();
  if (*exists) return Error{"a run with id '" + options.run_id + "' already exists"};
  if (options.repo.empty()) options.repo = defaults_.repo;
  if (options.repo.empty()) options.repo = std::filesystem::current_path().string();
  if (options.jobs == 0) options.jobs = defaults_.jobs;
  if (auto s = check_inputs_schema(workflow.inputs); !s.ok()) return Error{workflow.path + ": " + s.message()};
  if (auto s = check_host_parts(workflow); !s.ok()) return s.error();
  auto payload = prepare_payload(workflow.inputs, payload_in);
  if (!payload) return payload.error();
  // What a resume of this run reads instead of loading the text again.
  if (auto s = CompiledWorkflows(store_).remember(workflow); !s.ok()) return s.error();
  auto* run = new Run(*this, workflow, std::move(options), std::move(on_finished));
  if (auto s = run->begin(*payload); !s.ok()) {
    run->discard();
    return s.error();
  }
  runs_[run->id()] = run;
  return run->id();
}

Status Engine::check_host_parts(const workflows::Workflow& wf) const {
  std::string missing;
  for (const auto& step : wf.steps) {
    for (const auto& c : step.commands) {
      auto def = wf.commands.find(c);
      if (def == wf.commands.end() || !def->second.host || host_commands_.count(c)) continue;
      missing += "\n  step '" + step.id + "' is granted command '" + c + "' (host = true at " + wf.path + ":" +
                 std::to_string(def->second.location.line) + "): register it with hearth::Engine::register_command";
    }
    if (!step.agent) continue;
    for (const auto& t : step.agent->tools) {
      auto def = wf.tools.find(t);
      if (def == wf.tools.end() || host_tools_.count(t)) continue;
      missing += "\n  step '" + step.id + "' offers tool '" + t + "' ([tools." + t + "] at " + wf.path + ":" +
                 std::to_string(def->second.location.line) + "): register it with hearth::Engine::register_tool";
    }
  }
  if (missing.empty()) return {};
  return Error{"the workflow uses commands or tools that the program embedding Hearth implements, and this engine "
               "implements none of these (the hearth command line implements none at all):" + missing};
}

bool Engine::cancel(const std::string& run_id, const std::string& reason) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return false;
  it->second->cancel(reason);
  return true;
}

void Engine::cancel_all(const std::string& reason) {
  for (auto& [id, run] : runs_) run->cancel(reason);
}

sandbox::Sandbox* Engine::sandbox_of_kind(const std::string& kind) const {
  auto it = sandboxes_.find(kind);
  return it == sandboxes_.end() ? nullptr : it->second;
}

const CommandHandler* Engine::host_command(const std::string& name) const {
  auto it = host_commands_.find(name);
  return it == host_commands_.end() ? nullptr : &it->second;
}

const RegisteredTool* Engine::host_tool(const std::string& name) const {
  auto it = host_tools_.find(name);
  return it == host_tools_.end() ? nullptr : &it->second;
}

}  // namespace hearth::engine
