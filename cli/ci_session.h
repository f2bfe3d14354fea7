// `hearth ci`'s engine: the internal engine::Engine on one loop for the
// length of the command, reporting through the GitHub Actions reporter
// (ci/), SIGINT/SIGTERM cancelling every run, and the combined outcome of the
// runs it started or resumed. `hearth ci` still drives the internal engine
// (docs/embedding.md, "Not in the API yet"); the other commands use
// cli/session.h over the public API.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace hearth::cli {

class CiSession {
 public:
  /// Reports through `observer`. `store` and `observer` (not owned) must
  /// outlive the session.
  CiSession(engine::Store& store, engine::Observer* observer);
  ~CiSession();
  CiSession(const CiSession&) = delete;
  CiSession& operator=(const CiSession&) = delete;

  engine::Engine& engine() { return *engine_; }
  /// The callback to pass to Engine::start/resume; records the outcome.
  std::function<void(const hearth::RunResult&)> on_finished();
  /// Runs the loop until every run has finished; returns the exit code:
  /// 130 if any run was cancelled, else 1 if any failed, else 0.
  int wait();

 private:
  static void on_signal(uv_signal_t* h, int signum) noexcept;

  uv_loop_t loop_{};
  std::unique_ptr<sandbox::Sandbox> sandbox_;    // local
  std::unique_ptr<sandbox::Sandbox> namespace_;  // or its refusing stand-in (sandbox.h)
  std::unique_ptr<engine::Engine> engine_;
  uv_signal_t sigint_{}, sigterm_{};
  std::vector<hearth::RunResult> outcomes_;
};

}  // namespace hearth::cli
