// One engine on one loop for the length of a command: the store, the
// console reporter, SIGINT/SIGTERM cancelling every run, and the combined
// outcome of the runs it started or resumed.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/reporters.h"
#include "engine/engine.h"

namespace hearth::cli {

class Session {
 public:
  /// `store` must outlive the session.
  Session(engine::Store& store, bool jsonl_events);
  /// Reports through `observer` (not owned; must outlive the session)
  /// instead of the console reporter.
  Session(engine::Store& store, engine::Observer* observer);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  engine::Engine& engine() { return *engine_; }
  /// The callback to pass to Engine::start/resume; records the outcome.
  std::function<void(const engine::RunOutcome&)> on_finished();
  /// Runs the loop until every run has finished; returns the exit code:
  /// 130 if any run was cancelled, else 1 if any failed, else 0.
  int wait();

 private:
  void init(engine::Store& store, engine::Observer* observer);
  static void on_signal(uv_signal_t* h, int signum) noexcept;

  uv_loop_t loop_{};
  std::unique_ptr<sandbox::Sandbox> sandbox_;    // local
  std::unique_ptr<sandbox::Sandbox> namespace_;  // null where the host forbids it
  std::string namespace_problem_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ConsoleReporter> reporter_;  // null with an observer of the caller's
  uv_signal_t sigint_{}, sigterm_{};
  std::vector<engine::RunOutcome> outcomes_;
};

}  // namespace hearth::cli
