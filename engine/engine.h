// The engine: runs workflows on one libuv loop.
//
// The life of a run:
//   1. start(): validate the payload against [inputs], record the run, its
//      steps and the workflow's text (committed), schedule.
//   2. schedule (a "pass"): every step whose needs have finished is decided —
//      skipped (its `if` is false) or started (an attempt is recorded, up to
//      `jobs` at once). The pass's writes commit as one transaction; only
//      then are processes spawned and events delivered.
//   3. a process exits: its outcome (exit code, outputs, output tail) is
//      recorded in the next pass, committed before any dependent starts.
//   4. when no step can run, the run's status is recorded and on_finished
//      fires.
// Processes that exit during one loop iteration are recorded in one pass,
// so concurrent steps group-commit. A failed attempt may wait (durably) and
// retry; resume() takes a recorded run over after a crash (resume.cpp).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/tools.h"
#include "engine/events.h"
#include "engine/grants.h"
#include "engine/lease.h"
#include "engine/store.h"
#include "hearth/engine.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "workflows/workflow.h"

namespace hearth::engine {

/// A model-facing tool implemented by the program embedding the engine
/// (`[tools.<name>]`; hearth::Engine::register_tool checked its schema).
struct RegisteredTool {
  std::string description;
  nlohmann::json input_schema;  // JSON Schema of the arguments; checked before the handler is called
  ToolHandler handler;
};

class Run;

class Engine {
 public:
  /// `loop`, `store` and `sandbox` must outlive the engine. The engine's
  /// handles live on `loop`. REQUIRES at destruction: no run is active
  /// (every on_finished has fired). A finished run's handles close on the
  /// loop afterwards; they do not touch the engine.
  /// `defaults`: the repository, jobs and kill grace of runs whose options
  /// leave them unset (state_path is the store's business, not read here).
  /// `clock` is the time runs record and the timers of retries, leases and
  /// step timeouts (util/clock.h); null: the system's time and libuv timers
  /// on `loop`. When given, it must outlive the engine's runs.
  Engine(uv_loop_t* loop, Store& store, sandbox::Sandbox& sandbox, EngineOptions defaults = {},
         util::Clock* clock = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Registers another backend (not owned; must outlive the engine). A
  /// workflow whose [sandbox] table names a kind runs on the backend of that
  /// kind, and fails to start when none is registered; a workflow without
  /// the table runs on the backend given to the constructor.
  void add_sandbox(sandbox::Sandbox& sandbox) { sandboxes_[std::string(sandbox.kind())] = &sandbox; }

  /// Receives every committed event and all live output. Not owned; must
  /// stay alive while runs are active.
  void add_observer(Observer* observer);

  /// Starts a run. On error (the id is taken or malformed, the payload does
  /// not match [inputs], the store failed) nothing is recorded and
  /// on_finished never fires.
  /// On success returns the run id; on_finished fires exactly once, on the
  /// loop thread, after the run's final state has committed.
  /// The options are the public API's (hearth/engine.h); `payload` is the
  /// run's payload, parsed: options.payload_json is its text form, which
  /// hearth::Engine parses and this engine does not read.
  Result<std::string> start(const workflows::Workflow& workflow, nlohmann::json payload, StartOptions options,
                            std::function<void(const RunResult&)> on_finished);

  /// Continues a recorded run that is not finished (interrupted by a crash,
  /// failed or cancelled) from its stored state and workflow snapshot:
  /// succeeded steps are kept, attempts that were running when the engine
  /// died are recorded as interrupted and follow their retry policy, waiting
  /// retries wait out the rest of their delay; for a failed or cancelled run,
  /// every step that did not succeed runs again. Refused while another live
  /// engine holds the run's lease. Same callback contract as start().
  /// `current`, when not null, replaces the snapshot (options.current is
  /// the public API's form of it, which this engine does not read).
  Result<std::string> resume(const std::string& run_id, ResumeOptions options, const workflows::Workflow* current,
                             std::function<void(const RunResult&)> on_finished);

  /// Cancels a running run: running steps are killed (their process groups:
  /// SIGTERM, then SIGKILL after the grace period), steps not yet started
  /// are marked cancelled. Returns false if no such run is active.
  bool cancel(const std::string& run_id, const std::string& reason = "cancelled");
  /// Cancels every active run.
  void cancel_all(const std::string& reason);

  size_t active_runs() const { return runs_.size(); }

  /// Implements the command `name` of workflows that declare it with
  /// host = true; replaces an earlier one. Steps started afterwards use it.
  void set_host_command(const std::string& name, CommandHandler handler) { host_commands_[name] = std::move(handler); }
  /// Implements the tool `name` of workflows that declare [tools.<name>].
  void set_host_tool(const std::string& name, RegisteredTool tool) { host_tools_[name] = std::move(tool); }
  /// An error naming each host command and tool that a step of `wf` uses
  /// and this engine does not implement; ok when there is none.
  Status check_host_parts(const workflows::Workflow& wf) const;

  // ---- what a run uses of its engine (run.h) ----
  uv_loop_t* loop() const { return loop_; }
  Store& store() const { return store_; }
  util::Clock& clock() const { return *clock_; }
  /// What runs get when their options leave it unset.
  const EngineOptions& defaults() const { return defaults_; }
  /// Where runs keep their step files, grants and workspaces: <dir of the store>/tmp.
  const std::string& scratch_root() const { return scratch_root_; }
  /// The backend given to the constructor.
  sandbox::Sandbox& default_sandbox() const { return sandbox_; }
  /// The backend added for `kind`, or null.
  sandbox::Sandbox* sandbox_of_kind(const std::string& kind) const;
  const std::vector<Observer*>& observers() const { return observers_; }
  /// Null when the host implements no such command or tool.
  const CommandHandler* host_command(const std::string& name) const;
  const RegisteredTool* host_tool(const std::string& name) const;
  /// hearth-shim for granted commands (grants.h), looked up on first use;
  /// empty when there is none.
  const std::string& shim_path() {
    if (shim_path_.empty()) shim_path_ = find_shim();
    return shim_path_;
  }
  /// Called by a run once it is done: the engine forgets it.
  void finished(const std::string& run_id) { runs_.erase(run_id); }

 private:
  uv_loop_t* loop_;
  Store& store_;
  sandbox::Sandbox& sandbox_;
  EngineOptions defaults_;
  std::string scratch_root_;
  util::LoopClock loop_clock_;  // the default clock
  util::Clock* clock_;
  std::map<std::string, sandbox::Sandbox*> sandboxes_;  // by kind, besides sandbox_
  std::string shim_path_;
  std::vector<Observer*> observers_;
  std::map<std::string, Run*> runs_;  // each Run owns itself; freed after its handles close
  std::map<std::string, CommandHandler> host_commands_;
  std::map<std::string, RegisteredTool> host_tools_;
};

}  // namespace hearth::engine
