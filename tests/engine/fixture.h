// A temporary repository with a workflow, run by the real engine on a fresh
// libuv loop against a real SQLite file. The loop must close cleanly: a
// leaked handle fails the test.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include <boost/test/unit_test.hpp>

#include "engine/engine.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"
#include "tests/support/process.h"
#include "tests/support/sandbox.h"
#include "tests/support/shell.h"
#include "tests/support/statuses.h"
#include "workflows/loader.h"

namespace hearth::testing {

using hearth::RunStatus;
using hearth::StepStatus;

/// Collects what observers see.
struct Recorder : engine::Observer {
  std::vector<engine::EventRecord> events;
  std::map<std::string, std::string> output;  // step -> everything it printed
  std::function<void(const engine::EventRecord&)> on_each;
  void on_event(const engine::EventRecord& e) override {
    events.push_back(e);
    if (on_each) on_each(e);
  }
  void on_output(const std::string&, const std::string& step, std::string_view chunk) override {
    output[step].append(chunk);
  }
};

struct RunResult {
  hearth::RunResult outcome;
  std::vector<engine::StepRecord> steps;
  std::vector<engine::EventRecord> events;  // as delivered to observers
  const engine::StepRecord& step(const std::string& id) const {
    for (auto& s : steps)
      if (s.id == id) return s;
    BOOST_FAIL("no step " + id);
    throw 0;
  }
  /// What step `id` printed, over all its attempts, as stored.
  std::string output(const std::string& id) const {
    std::string out;
    for (auto& a : step(id).attempt_list) out += a.output_tail;
    return out;
  }
  /// What step `id` printed, having checked that the run succeeded (what
  /// the step printed and why it ended, if not).
  std::string succeeded_output(const std::string& id) const {
    std::string out = output(id);
    BOOST_TEST(outcome.status == RunStatus::succeeded, "the run did not succeed: " << out << step(id).reason);
    return out;
  }
};

/// What a test resumes with: the steps to re-run and, in place of the
/// run's snapshot, a loaded workflow (hearth::ResumeOptions holds the public
/// form of it).
struct ResumeOptions {
  std::vector<std::string> from;
  std::optional<workflows::Workflow> current;
};

/// The engine the tests drive: steps killed on timeout get 500 ms of grace.
inline EngineOptions test_engine_options() {
  EngineOptions o;
  o.kill_grace = std::chrono::milliseconds(500);
  return o;
}

class TempRepo {
 public:
  explicit TempRepo(const std::string& workflow_toml) {
    write_file(dir_.path / "workflow.toml", workflow_toml);
  }

  std::filesystem::path root() const { return dir_.path; }
  std::string read(const std::string& rel) const { return read_file(dir_.path / rel); }
  bool exists(const std::string& rel) const { return std::filesystem::exists(dir_.path / rel); }
  std::string state_path() const { return (dir_.path / ".hearth" / "state.db").string(); }

  workflows::Workflow load() const {
    auto loaded = workflows::load_workflow_file((dir_.path / "workflow.toml").string());
    std::string all;
    for (auto& e : loaded.errors) all += e + "\n";
    BOOST_REQUIRE_MESSAGE(loaded.ok(), "workflow does not load:\n" + all);
    return *loaded.workflow;
  }

  /// Later run()s open the store through this SQLite VFS (null: the default).
  void use_vfs(const char* vfs) { vfs_ = vfs; }
  /// Later run()s and resume()s keep the state in the store at `location`
  /// (a PostgreSQL URL) instead of state_path(); the engine's files stay
  /// in the repository's .hearth.
  void use_store(const std::string& location) { store_location_ = location; }

  /// Runs the workflow to the end. `during` is called with the engine and
  /// the run id right after the start, for tests that act mid-run.
  RunResult run(nlohmann::json payload = nlohmann::json::object(), int jobs = 0,
                std::function<void(engine::Engine&, Recorder&, const std::string&)> during = {}) {
    StartOptions opts;
    opts.repo = dir_.str();
    opts.jobs = jobs;
    opts.run_id = next_run_id_;
    return drive([&](engine::Engine& e, auto done) { return e.start(load(), std::move(payload), opts, done); }, during);
  }

  /// Resumes `run_id` to the end, like run().
  RunResult resume(const std::string& run_id, const ResumeOptions& ropts = {}) {
    return drive([&](engine::Engine& e, auto done) { return e.resume(run_id, public_form(ropts), current(ropts), done); });
  }

  /// Expects resume() to refuse; returns its message.
  std::string resume_error(const std::string& run_id, const ResumeOptions& ropts = {}) {
    return refused([&](engine::Engine& e, auto done) { return e.resume(run_id, public_form(ropts), current(ropts), done); });
  }

  /// Starts a run expecting start() to refuse it; returns the message.
  std::string start_error(nlohmann::json payload) {
    StartOptions opts;
    opts.repo = dir_.str();
    return refused([&](engine::Engine& e, auto done) { return e.start(load(), std::move(payload), opts, done); });
  }

  /// A real crash: runs the workflow as `run_id` in a child process and
  /// SIGKILLs it once `ready()` holds (checked every 5 ms, 10 s deadline).
  /// Steps run in their own process groups and outlive the engine, as they
  /// would after a real crash; every group whose leader wrote a `*.pid` file
  /// into the repository is killed too.
  void crash_when(const std::string& run_id, const std::function<bool()>& ready,
                  nlohmann::json payload = nlohmann::json::object()) {
    auto wf = load();
    pid_t child = fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      auto store = engine::Store::open(state_path());
      if (!store.ok()) _exit(3);
      uv_loop_t loop;
      uv_loop_init(&loop);
      auto sandbox = sandbox::make_local_sandbox();
      engine::Engine engine(&loop, **store, *sandbox, test_engine_options());
      StartOptions opts;
      opts.run_id = run_id;
      opts.repo = dir_.str();
      opts.jobs = 2;
      if (!engine.start(wf, payload, opts, [](const hearth::RunResult&) {}).ok()) _exit(4);
      uv_run(&loop, UV_RUN_DEFAULT);
      _exit(5);  // finished before the crash point: the test is wrong
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool hit = false;
    while (!(hit = ready()) && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(child, &status, WNOHANG) == child) BOOST_FAIL("the engine exited before the crash point, status " << status);
      usleep(5000);
    }
    ::kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    for (auto& entry : std::filesystem::directory_iterator(dir_.path)) {
      if (entry.path().extension() != ".pid") continue;
      pid_t group = static_cast<pid_t>(std::atoi(read_file(entry.path()).c_str()));
      if (group > 0) ::kill(-group, SIGKILL);
    }
    BOOST_REQUIRE_MESSAGE(hit, "the crash point was never reached");
  }

  /// The step's record as stored now (for crash points).
  std::optional<engine::StepRecord> stored_step(const std::string& run_id, const std::string& step) const {
    auto store = engine::Store::open(state_path());
    if (!store.ok()) return std::nullopt;
    auto steps = (*store)->load_steps(run_id);
    if (!steps.ok()) return std::nullopt;
    for (auto& s : *steps)
      if (s.id == step) return s;
    return std::nullopt;
  }

  /// Checks that `secret` is nowhere the engine keeps or reports: the run
  /// store's files, the events, and what each step printed.
  void expect_secret_absent(const RunResult& r, const std::string& secret) const {
    for (auto& f : {state_path(), state_path() + "-wal"})
      BOOST_TEST(read_file(f).find(secret) == std::string::npos, "the secret is in " << f);
    for (auto& e : r.events) BOOST_TEST(e.data.dump().find(secret) == std::string::npos, "the secret is in " << e.type);
    for (auto& [step, out] : last_output_)
      BOOST_TEST(out.find(secret) == std::string::npos, "step " << step << " printed it");
    for (auto& s : r.steps) BOOST_TEST(r.output(s.id).find(secret) == std::string::npos, "stored output of " << s.id);
  }

  void rewrite(const std::string& workflow_toml) { write_file(dir_.path / "workflow.toml", workflow_toml); }
  void write(const std::string& rel, const std::string& text) { write_file(dir_.path / rel, text); }

  const std::map<std::string, std::string>& last_output() const { return last_output_; }

 private:
  using Done = std::function<void(const hearth::RunResult&)>;

  static hearth::ResumeOptions public_form(const ResumeOptions& r) {
    hearth::ResumeOptions o;
    o.from = r.from;
    return o;
  }
  static const workflows::Workflow* current(const ResumeOptions& r) { return r.current ? &*r.current : nullptr; }
  using Begin = std::function<Result<std::string>(engine::Engine&, Done)>;

  // One engine on a fresh loop over the repository's store: begins a run
  // (start or resume) and runs the loop until it is empty.
  RunResult drive(const Begin& begin,
                  const std::function<void(engine::Engine&, Recorder&, const std::string&)>& during = {}) {
    auto store = store_location_.empty() ? engine::Store::open(state_path(), vfs_)
                                         : engine::Store::open(store_location_, nullptr, (dir_.path / ".hearth").string());
    BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto sandbox = sandbox::make_local_sandbox();
    // Workflows that ask for [sandbox] kind = "namespace" get it (where the host allows).
    auto isolated = sandbox::make_namespace_sandbox();
    RunResult result;
    {
      engine::Engine engine(&loop, **store, *sandbox, test_engine_options());
      if (isolated.ok()) engine.add_sandbox(**isolated);
      Recorder rec;
      engine.add_observer(&rec);
      int finished = 0;
      auto id = begin(engine, [&](const hearth::RunResult& o) {
        result.outcome = o;
        ++finished;
      });
      if (!id.ok() && tolerate_start_error_) {
        result.outcome = {next_run_id_, hearth::RunStatus::failed, id.message()};
        ++finished;
      } else {
        BOOST_REQUIRE_MESSAGE(id.ok(), (id.ok() ? "" : id.message()));
        if (during) during(engine, rec, *id);
      }
      uv_run(&loop, UV_RUN_DEFAULT);
      BOOST_TEST(finished == 1);
      result.events = rec.events;
      last_output_ = rec.output;
    }
    BOOST_TEST(uv_loop_close(&loop) == 0);
    if (tolerate_start_error_) return result;  // the store may be unusable
    auto steps = (*store)->load_steps(result.outcome.run_id);
    BOOST_REQUIRE(steps.ok());
    result.steps = *steps;
    return result;
  }

  // Expects `begin` to be refused: nothing finishes, the loop closes clean.
  std::string refused(const Begin& begin) {
    auto store = engine::Store::open(state_path());
    BOOST_REQUIRE(store.ok());
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto sandbox = sandbox::make_local_sandbox();
    std::string message;
    {
      engine::Engine engine(&loop, **store, *sandbox, test_engine_options());
      auto id = begin(engine, [](const hearth::RunResult&) { BOOST_FAIL("a refused run finished"); });
      BOOST_REQUIRE(!id.ok());
      message = id.message();
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    BOOST_TEST(uv_loop_close(&loop) == 0);
    return message;
  }

  TempDir dir_;
  std::map<std::string, std::string> last_output_;
  const char* vfs_ = nullptr;
  std::string store_location_;

 public:
  /// The id the next run() uses (empty: a new one).
  std::string next_run_id_;
  /// run() reports a refused start in the outcome instead of failing the test.
  bool tolerate_start_error_ = false;
};

}  // namespace hearth::testing
