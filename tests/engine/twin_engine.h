// The real engine over a TempRepo's real SQLite file, on a fresh loop, with
// the clock and the sandbox a test chooses (the twins in tests/support/).
// The test drives it: settle() runs the loop until nothing more can happen
// without the clock moving, the test looks at what is stored, advances the
// clock, settles again. The loop must close cleanly at the end.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/test/unit_test.hpp>

#include "engine/engine.h"
#include "tests/engine/fixture.h"
#include "tests/support/loop.h"

namespace hearth::testing {

class TwinEngine {
 public:
  /// `clock` and `box` (null: the local sandbox) must outlive this.
  /// Steps killed on timeout get `kill_grace` (on `clock` too) before SIGKILL.
  TwinEngine(TempRepo& repo, util::Clock* clock, sandbox::Sandbox* box = nullptr,
             std::chrono::milliseconds kill_grace = std::chrono::milliseconds(500))
      : repo_(repo) {
    uv_loop_init(&loop_);
    auto store = engine::Store::open(repo.state_path());
    BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
    store_ = std::move(*store);
    local_ = sandbox::make_local_sandbox();
    EngineOptions defaults;
    defaults.kill_grace = kill_grace;
    engine_.emplace(&loop_, *store_, box ? *box : *local_, defaults, clock);
    engine_->add_observer(&recorder);
  }

  /// A run still active (the test failed half-way) is cancelled; should the
  /// loop stay busy for 20 s of real time even so, it is left open: the
  /// test has failed already, and hanging it would hide why.
  ~TwinEngine() {
    bool active = engine_->active_runs() > 0;
    BOOST_TEST(!active, "a run is still active at the end of the test");
    if (active) engine_->cancel_all("the test ended");
    if (!drain(std::chrono::seconds(20))) return;
    engine_.reset();
    BOOST_TEST(uv_loop_close(&loop_) == 0);
  }

  TwinEngine(const TwinEngine&) = delete;
  TwinEngine& operator=(const TwinEngine&) = delete;

  /// Starts the repository's workflow as run `id`.
  void start(const std::string& id) {
    StartOptions opts;
    opts.run_id = id;
    opts.repo = repo_.root().string();
    opts.jobs = 1;  // one step at a time: the order of spawns is the file's
    outcome_.reset();
    auto started = engine_->start(repo_.load(), nlohmann::json::object(), opts, on_finished());
    BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.message()));
  }

  /// Resumes run `id`; returns why it was refused, or nothing once it is
  /// under way.
  std::optional<std::string> resume(const std::string& id) {
    hearth::ResumeOptions opts;
    opts.jobs = 1;
    outcome_.reset();
    auto resumed = engine_->resume(id, opts, nullptr, on_finished());
    if (!resumed.ok()) return resumed.message();
    return std::nullopt;
  }

  /// Runs the loop until it has nothing left to do (no process, no pending
  /// commit): what follows can only come from the clock moving. Fails loudly
  /// when that takes longer than `timeout` of real time (a timer that
  /// ignores the clock given to the engine keeps the loop busy).
  void settle(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    BOOST_REQUIRE_MESSAGE(drain(timeout), "the loop was still busy after " << timeout.count() << " ms of real time");
  }

  /// Runs the loop until `done()` holds (a process still runs meanwhile).
  void run_until(const std::function<bool()>& done) { run_loop_until(&loop_, done); }

  /// The run's outcome, once it has finished.
  const std::optional<hearth::RunResult>& outcome() const { return outcome_; }

  /// Run `id`'s steps and their attempts as stored now.
  std::vector<engine::StepRecord> steps(const std::string& id) const {
    auto steps = store_->load_steps(id);
    BOOST_REQUIRE_MESSAGE(steps.ok(), (steps.ok() ? "" : steps.message()));
    return *steps;
  }
  engine::StepRecord step(const std::string& id, const std::string& step_id) const {
    for (auto& s : steps(id))
      if (s.id == step_id) return s;
    BOOST_FAIL("no step " << step_id << " in run " << id);
    return {};
  }
  engine::RunRecord run(const std::string& id) const {
    auto r = store_->load_run(id);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
    return *r;
  }

  /// Events delivered so far of `type` for `step`.
  std::vector<engine::EventRecord> events(const std::string& type, const std::string& step) const {
    std::vector<engine::EventRecord> out;
    for (auto& e : recorder.events)
      if (e.type == type && e.step_id == step) out.push_back(e);
    return out;
  }

  Recorder recorder;

 private:
  // Runs the loop until it has nothing left to do; false when that takes
  // longer than `timeout` of real time.
  bool drain(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    uv_timer_t tick;  // wakes the loop to check the deadline; keeps nothing alive
    uv_timer_init(&loop_, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) noexcept {}, 50, 50);
    uv_unref(reinterpret_cast<uv_handle_t*>(&tick));
    while (uv_loop_alive(&loop_) && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    bool idle = !uv_loop_alive(&loop_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return idle;
  }

  std::function<void(const hearth::RunResult&)> on_finished() {
    return [this](const hearth::RunResult& r) { outcome_ = r; };
  }

  TempRepo& repo_;
  uv_loop_t loop_{};
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<sandbox::Sandbox> local_;
  std::optional<engine::Engine> engine_;
  std::optional<hearth::RunResult> outcome_;
};

}  // namespace hearth::testing
