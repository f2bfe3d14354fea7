// A temporary repository with a workflow, run by the real engine on a fresh
// libuv loop against a real SQLite file. The loop must close cleanly: a
// leaked handle fails the test.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <boost/test/unit_test.hpp>

#include "engine/engine.h"
#include "workflows/loader.h"

namespace hearth::engine {
inline std::ostream& operator<<(std::ostream& os, RunStatus s) { return os << to_string(s); }
}  // namespace hearth::engine

namespace hearth::testing {

/// A directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/hearth-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

/// Waits (up to 5 s) for `pid` to be gone or a zombie; false if it is still
/// running then. A signal is delivered at once but the process takes a moment
/// to die, so this waits on the fact rather than asserting it instantly.
inline bool process_gone(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (stat.empty() || (close != std::string::npos && stat.size() > close + 2 && stat[close + 2] == 'Z')) return true;
    usleep(10 * 1000);
  }
  return false;
}

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
  engine::RunOutcome outcome;
  std::vector<engine::StepRecord> steps;
  std::vector<engine::EventRecord> events;  // as delivered to observers
  const engine::StepRecord& step(const std::string& id) const {
    for (auto& s : steps)
      if (s.id == id) return s;
    BOOST_FAIL("no step " + id);
    throw 0;
  }
};

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

  /// Runs the workflow to the end. `during` is called with the engine and
  /// the run id right after the start, for tests that act mid-run.
  RunResult run(nlohmann::json payload = nlohmann::json::object(), int jobs = 0,
                std::function<void(engine::Engine&, Recorder&, const std::string&)> during = {}) {
    auto store = engine::Store::open(state_path());
    BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto sandbox = sandbox::make_local_sandbox();
    RunResult result;
    {
      engine::Engine engine(&loop, **store, *sandbox);
      Recorder rec;
      engine.add_observer(&rec);
      engine::RunOptions opts;
      opts.repo = dir_.str();
      opts.payload = std::move(payload);
      opts.jobs = jobs;
      opts.kill_grace = std::chrono::milliseconds(500);
      int finished = 0;
      auto id = engine.start(load(), opts, [&](const engine::RunOutcome& o) {
        result.outcome = o;
        ++finished;
      });
      BOOST_REQUIRE_MESSAGE(id.ok(), (id.ok() ? "" : id.message()));
      if (during) during(engine, rec, *id);
      uv_run(&loop, UV_RUN_DEFAULT);
      BOOST_TEST(finished == 1);
      result.events = rec.events;
      last_output_ = rec.output;
    }
    BOOST_TEST(uv_loop_close(&loop) == 0);
    auto steps = (*store)->load_steps(result.outcome.run_id);
    BOOST_REQUIRE(steps.ok());
    result.steps = *steps;
    return result;
  }

  /// Starts a run expecting start() to refuse it; returns the message.
  std::string start_error(nlohmann::json payload) {
    auto store = engine::Store::open(state_path());
    BOOST_REQUIRE(store.ok());
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto sandbox = sandbox::make_local_sandbox();
    std::string message;
    {
      engine::Engine engine(&loop, **store, *sandbox);
      engine::RunOptions opts;
      opts.repo = dir_.str();
      opts.payload = std::move(payload);
      auto id = engine.start(load(), opts, [](const engine::RunOutcome&) { BOOST_FAIL("a refused run finished"); });
      BOOST_REQUIRE(!id.ok());
      message = id.message();
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    BOOST_TEST(uv_loop_close(&loop) == 0);
    return message;
  }

  const std::map<std::string, std::string>& last_output() const { return last_output_; }

 private:
  TempDir dir_;
  std::map<std::string, std::string> last_output_;
};

}  // namespace hearth::testing
