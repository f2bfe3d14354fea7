// libhearth through its public headers only: this target's include path is
// include/ alone, so a private header here would not compile. The host owns
// the loop; the tests run it the way an embedding program would.
#define BOOST_TEST_MODULE hearth_public_api
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <hearth/hearth.h>

namespace fs = std::filesystem;

namespace hearth {
inline std::ostream& operator<<(std::ostream& os, RunStatus s) { return os << to_string(s); }
}  // namespace hearth

namespace {

// Boost evaluates a check's message even when the check passes.
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.message();
}

struct Host {
  fs::path dir;
  uv_loop_t loop{};
  std::unique_ptr<hearth::Engine> engine;

  Host() {
    char tmpl[] = "/tmp/hearth-api-XXXXXX";
    dir = mkdtemp(tmpl);
    uv_loop_init(&loop);
    auto e = hearth::Engine::open(&loop, {.state_path = (dir / "state.db").string(), .repo = dir.string()});
    BOOST_REQUIRE_MESSAGE(e.ok(), why(e));
    engine = std::move(*e);
  }
  ~Host() {
    // A test that failed half-way leaves runs behind: drain them first.
    if (engine && engine->active_runs() > 0) {
      engine->shutdown([] {});
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    engine.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0, "a handle of the engine outlived it");
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  hearth::Workflow workflow(const std::string& text) {
    auto r = hearth::load_workflow_text(text, "wf.toml");
    std::string errors;
    for (auto& e : r.errors) errors += e + "\n";
    BOOST_REQUIRE_MESSAGE(r, errors);
    return *r.workflow;
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

int thread_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (auto* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

const char* kTwoSteps = R"(
name = "two"
[[steps]]
id = "hello"
run = "echo hello from the step; echo greeting=hi >> $HEARTH_OUTPUT"
[[steps]]
id = "after"
needs = ["hello"]
run = "echo ${{ steps.hello.outputs.greeting }} > after.txt"
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(public_api)

BOOST_AUTO_TEST_CASE(a_broken_workflow_gives_every_error_with_its_place) {
  auto r = hearth::load_workflow_text("[[steps]]\nid = \"a\"\nneeds = [\"b\"]\nrun = \"true\"\nbogus = 1\n", "ci.toml");
  BOOST_TEST(!r);
  BOOST_REQUIRE(r.errors.size() == 2u);
  BOOST_TEST(r.errors[0].rfind("ci.toml:", 0) == 0, r.errors[0]);
  BOOST_TEST(r.errors[0].find("unknown step 'b'") != std::string::npos, r.errors[0]);
  BOOST_TEST(r.errors[1].rfind("ci.toml:5:1:", 0) == 0, r.errors[1]);
  auto missing = hearth::load_workflow("/nonexistent/wf.toml");
  BOOST_TEST(!missing);
  BOOST_TEST(missing.errors.at(0).find("/nonexistent/wf.toml") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_workflow_describes_itself) {
  auto r = hearth::load_workflow_text("name = \"triage\"\n[on]\ngithub = [\"issues.opened\"]\n[[steps]]\nid = \"x\"\nrun = \"true\"\n",
                                      "t.toml");
  BOOST_REQUIRE(r);
  BOOST_TEST(r.workflow->name() == "triage");
  BOOST_TEST(r.workflow->step_ids() == std::vector<std::string>{"x"});
  BOOST_TEST(r.workflow->hash().rfind("sha256:", 0) == 0);
  BOOST_TEST(r.workflow->starts_on("issues", "opened"));
  BOOST_TEST(!r.workflow->starts_on("issues", "closed"));
}

BOOST_AUTO_TEST_CASE(a_run_on_the_hosts_loop_reports_events_output_and_result_without_threads) {
  Host h;
  int threads_before = thread_count();
  std::vector<hearth::Event> events;
  std::string output;
  int max_threads = 0;
  h.engine->on_event([&](const hearth::Event& e) {
    events.push_back(e);
    max_threads = std::max(max_threads, thread_count());
  });
  h.engine->on_output([&](const std::string&, const std::string& step, std::string_view chunk) {
    if (step == "hello") output += chunk;
  });
  // The host's own timer keeps ticking while the run goes on.
  uv_timer_t tick{};
  int ticks = 0;
  uv_timer_init(&h.loop, &tick);
  tick.data = &ticks;
  uv_timer_start(&tick, [](uv_timer_t* t) noexcept { ++*static_cast<int*>(t->data); }, 1, 1);
  std::optional<hearth::RunResult> result;
  auto id = h.engine->start(h.workflow(kTwoSteps), {}, [&](const hearth::RunResult& r) {
    BOOST_TEST(!result.has_value(), "done fired twice");
    result = r;
    uv_timer_stop(&tick);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  });
  BOOST_REQUIRE_MESSAGE(id.ok(), why(id));
  uv_run(&h.loop, UV_RUN_DEFAULT);

  BOOST_REQUIRE(result.has_value());
  BOOST_TEST(result->run_id == *id);
  BOOST_TEST(result->status == hearth::RunStatus::succeeded);
  BOOST_TEST(result->exit_code() == 0);
  BOOST_TEST(output == "hello from the step\n");
  BOOST_TEST(h.read("after.txt") == "hi\n");
  BOOST_TEST(max_threads == threads_before, "the engine started threads");
  BOOST_TEST(ticks > 0);
  BOOST_REQUIRE(events.size() >= 6u);
  for (size_t i = 0; i < events.size(); ++i) BOOST_TEST(events[i].seq == static_cast<int64_t>(i + 1));
  BOOST_TEST(events.front().type == "run.started");
  BOOST_TEST(events.back().type == "run.finished");
  BOOST_TEST(events.back().data_json.find("\"succeeded\"") != std::string::npos);
  BOOST_TEST(events.back().json.find("\"type\":\"run.finished\"") != std::string::npos);

  auto run = h.engine->run(*id);
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->status == "succeeded");
  BOOST_REQUIRE(run->steps.size() == 2u);
  BOOST_TEST(run->steps[0].outputs_json == R"({"greeting":"hi"})");
  auto stored = h.engine->events(*id, 2);
  BOOST_REQUIRE(stored.ok());
  BOOST_TEST(stored->size() == events.size() - 2);
  BOOST_TEST(stored->front().json == events[2].json);
}

BOOST_AUTO_TEST_CASE(a_payload_that_does_not_match_the_inputs_is_refused_and_nothing_is_stored) {
  Host h;
  auto wf = h.workflow("[inputs]\nissue = { type = \"integer\", required = true }\n[[steps]]\nid = \"a\"\nrun = \"true\"\n");
  bool fired = false;
  auto r = h.engine->start(wf, {.payload_json = R"({"issue": "twelve"})"}, [&](const hearth::RunResult&) { fired = true; });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.message().find("issue") != std::string::npos, why(r));
  auto bad_json = h.engine->start(wf, {.payload_json = "{nope"}, [&](const hearth::RunResult&) { fired = true; });
  BOOST_TEST(!bad_json.ok());
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_TEST(!fired);
  auto runs = h.engine->runs();
  BOOST_REQUIRE(runs.ok());
  BOOST_TEST(runs->empty());
}

BOOST_AUTO_TEST_CASE(cancel_from_an_event_callback_kills_the_step) {
  Host h;
  auto wf = h.workflow("[[steps]]\nid = \"slow\"\nrun = \"sleep 30\"\n[[steps]]\nid = \"later\"\nneeds = [\"slow\"]\nrun = \"touch later\"\n");
  std::string id;
  h.engine->on_event([&](const hearth::Event& e) {
    if (e.type == "step.started") BOOST_TEST(h.engine->cancel(e.run_id, "the host changed its mind"));
  });
  std::optional<hearth::RunResult> result;
  auto started = std::chrono::steady_clock::now();
  auto r = h.engine->start(wf, {}, [&](const hearth::RunResult& res) { result = res; });
  BOOST_REQUIRE(r.ok());
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(result.has_value());
  BOOST_TEST(result->status == hearth::RunStatus::cancelled);
  BOOST_TEST(result->exit_code() == 130);
  BOOST_TEST((std::chrono::steady_clock::now() - started < std::chrono::seconds(10)));
  BOOST_TEST(!fs::exists(h.dir / "later"));
  auto run = h.engine->run(*r);
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->steps[1].status == "cancelled");
}

BOOST_AUTO_TEST_CASE(shutdown_drains_and_the_engine_can_be_destroyed_in_its_callback) {
  Host h;
  auto wf = h.workflow("[[steps]]\nid = \"slow\"\nrun = \"sleep 30\"\n");
  std::vector<std::string> order;
  BOOST_REQUIRE(h.engine->start(wf, {}, [&](const hearth::RunResult& r) {
    order.push_back(std::string("done:") + hearth::to_string(r.status));
  }).ok());
  BOOST_REQUIRE(h.engine->start(wf, {}, [&](const hearth::RunResult&) { order.push_back("done"); }).ok());
  BOOST_TEST(h.engine->active_runs() == 2u);
  // Shut down once both steps have started.
  int started = 0;
  h.engine->on_event([&](const hearth::Event& e) {
    if (e.type == "step.started" && ++started == 2)
      h.engine->shutdown([&] {
        order.push_back("drained");
        h.engine.reset();
      });
  });
  uv_run(&h.loop, UV_RUN_DEFAULT);
  // Both runs end (in either order), then the drain callback: last, once.
  BOOST_REQUIRE(order.size() == 3u);
  BOOST_TEST(std::count(order.begin(), order.end(), "done:cancelled") == 1);
  BOOST_TEST(std::count(order.begin(), order.end(), "done") == 1);
  BOOST_TEST(order.back() == "drained");
  BOOST_TEST(!h.engine);
}

BOOST_AUTO_TEST_CASE(resume_continues_a_failed_run_without_repeating_finished_steps) {
  Host h;
  auto wf = h.workflow(R"(
[[steps]]
id = "count"
run = "echo x >> count.txt"
[[steps]]
id = "flaky"
needs = ["count"]
run = "test -f ready"
)");
  std::optional<hearth::RunResult> first, second;
  auto id = h.engine->start(wf, {.run_id = "run-1"}, [&](const hearth::RunResult& r) { first = r; });
  BOOST_REQUIRE(id.ok());
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(first->status == hearth::RunStatus::failed);
  std::ofstream(h.dir / "ready") << "";
  BOOST_TEST(!h.engine->start(wf, {.run_id = "run-1"}, nullptr).ok(), "an existing id must be refused by start()");
  auto again = h.engine->resume("run-1", {}, [&](const hearth::RunResult& r) { second = r; });
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST(second->status == hearth::RunStatus::succeeded);
  BOOST_TEST(h.read("count.txt") == "x\n");
  auto missing = h.engine->resume("no-such-run", {}, nullptr);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.message().find("no-such-run") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_callback_may_unsubscribe_itself) {
  Host h;
  int calls = 0;
  uint64_t sub = 0;
  sub = h.engine->on_event([&](const hearth::Event&) {
    ++calls;
    h.engine->unsubscribe(sub);
  });
  BOOST_REQUIRE(h.engine->start(h.workflow(kTwoSteps), {}, nullptr).ok());
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(open_reports_an_unusable_state_path) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto e = hearth::Engine::open(&loop, {.state_path = "/proc/hearth/state.db"});
  BOOST_REQUIRE(!e.ok());
  BOOST_TEST(e.message().find("/proc/hearth/state.db") != std::string::npos, why(e));
  BOOST_TEST(!hearth::Engine::open(&loop, {}).ok());
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
