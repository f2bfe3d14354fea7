// An embedding program for the public API suites (public_api_tests, whose
// include path is include/ alone): a directory under /tmp, a loop the host
// owns, and an engine on it. At scope exit the engine drains what a failed
// test left running and the loop must close cleanly.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <hearth/hearth.h>

#include "../support/statuses.h"

namespace hearth::testing {

/// The message of a failed result, "" otherwise (Boost evaluates a check's
/// message even when the check passes).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.message();
}

struct ApiHost {
  std::filesystem::path dir;
  uv_loop_t loop{};
  std::unique_ptr<hearth::Engine> engine;
  std::string output;  // every step's live output, when recording
  std::vector<hearth::Event> events;  // every event, when recording

  /// The store at `state` under the directory; with `record`, output and
  /// events are collected.
  explicit ApiHost(const std::string& state = "state.db", bool record = false) {
    char tmpl[] = "/tmp/hearth-api-XXXXXX";
    dir = mkdtemp(tmpl);
    uv_loop_init(&loop);
    auto e = hearth::Engine::open(&loop, {.state_path = (dir / state).string(), .repo = dir.string()});
    BOOST_REQUIRE_MESSAGE(e.ok(), why(e));
    engine = std::move(*e);
    if (!record) return;
    engine->on_output([this](const std::string&, const std::string&, std::string_view chunk) { output += chunk; });
    engine->on_event([this](const hearth::Event& ev) { events.push_back(ev); });
  }
  ~ApiHost() {
    // A test that failed half-way leaves runs behind: drain them first.
    if (engine && engine->active_runs() > 0) {
      engine->shutdown([] {});
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    engine.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0, "a handle of the engine outlived it");
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  ApiHost(const ApiHost&) = delete;
  ApiHost& operator=(const ApiHost&) = delete;

  /// `text` loaded as a workflow named `name`; the test stops on errors.
  hearth::Workflow workflow(const std::string& text, const std::string& name = "wf.toml") {
    auto r = hearth::load_workflow_text(text, name);
    std::string errors;
    for (auto& e : r.errors) errors += e + "\n";
    BOOST_REQUIRE_MESSAGE(r, errors);
    return *r.workflow;
  }
  /// The file `name` under the directory, or "".
  std::string read(const std::string& name) {
    std::ifstream in(dir / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

}  // namespace hearth::testing
