// One hearth::Engine on a loop of its own for the length of a command: the
// store, the console reporter, SIGINT/SIGTERM cancelling every run, and the
// combined outcome of the runs it started or resumed. Public API only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "cli.h"
#include "reporters.h"

namespace hearth::cli {

/// How the console reporter of a Session writes.
struct ConsoleOptions {
  std::string show_command = "hearth show";  // printed with the run id after a run that did not succeed
  std::string color = "auto";                // --color
};

class Session {
 public:
  enum class Report {
    none,     // queries only (`hearth runs`, `hearth show`): no reporter, no signal handling
    console,  // ConsoleReporter, styled for stdout
    jsonl,    // ConsoleReporter printing events as JSON lines
  };
  /// Opens the store at `state_path` with `repo` as the runs' repository.
  /// What the shared options say about the console (show_command() in cli.h, --color).
  static ConsoleOptions console_of(const Globals& g);
  /// The error is the store's.
  static Result<std::unique_ptr<Session>> open(const std::string& state_path, const std::string& repo, Report report,
                                               const ConsoleOptions& console = ConsoleOptions());
  /// open() for commands that start or resume runs: the state of `g` and
  /// `repo`, a console reporter (JSON lines if `events` is "jsonl"). On
  /// failure prints the store's error to stderr and returns null.
  static std::unique_ptr<Session> open_for_runs(const Globals& g, const std::string& repo, const std::string& events);
  /// Closes the engine's and the reporter's handles and the loop. REQUIRES:
  /// wait() has returned, or nothing was started.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Engine& engine() { return *engine_; }
  /// The state database's path, as given to open().
  const std::string& state_path() const { return state_path_; }
  /// The callback to pass to Engine::start/resume; records the outcome.
  FinishedCallback on_finished();
  /// Runs the loop until every run has finished; returns the exit code:
  /// 130 if any run was cancelled, else 1 if any failed, else 0.
  int wait();

 private:
  Session() = default;
  static void on_signal(uv_signal_t* h, int signum) noexcept;

  uv_loop_t loop_{};
  std::string state_path_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ConsoleReporter> reporter_;  // null with Report::none
  bool signals_ = false;                       // sigint_ and sigterm_ are initialised
  uv_signal_t sigint_{}, sigterm_{};
  std::vector<RunResult> outcomes_;
};

}  // namespace hearth::cli
