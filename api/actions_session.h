// The engine of the Actions step (actions_step.cpp, hearth::run_actions_step):
// the internal engine::Engine on one loop for the length of the step,
// reporting through the GitHub Actions reporter (ci/), SIGINT/SIGTERM
// cancelling every run, and the combined outcome of the runs it started or
// resumed. It drives the engine directly because the reporter observes the
// engine's own event records and workflows (for the annotations' lines).
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace hearth::detail {

/// Exit codes of the Actions step, the same as `hearth`'s.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCancelled = 130;


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

}  // namespace hearth::detail
