// libhearth through its public headers only: this target's include path is
// include/ alone, so a private header here would not compile. The host owns
// the loop; the tests run it the way an embedding program would.
#define BOOST_TEST_MODULE hearth_public_api
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <hearth/hearth.h>
#include <hearth/sandbox.h>
#include <hearth/server.h>

#include "host.h"
#include "../support/workflow_toml.h"

namespace fs = std::filesystem;
using hearth::testing::why;

namespace {

using Host = hearth::testing::ApiHost;

// libuv's threadpool, shared by every loop of the process, starts at its
// first use; the engine fsyncs its store there (as uv_fs_* calls do), so a
// host that counts threads counts the pool before the engine's run.
void start_libuvs_threadpool() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_work_t work{};
  uv_queue_work(&loop, &work, [](uv_work_t*) noexcept {}, [](uv_work_t*, int) noexcept {});
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

int thread_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (auto* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

const std::string kTwoSteps = hearth::testing::workflow_toml(
    {
        {.id = "hello", .run = "echo hello from the step; echo greeting=hi >> $HEARTH_OUTPUT"},
        {.id = "after", .needs = {"hello"}, .run = "echo ${{ steps.hello.outputs.greeting }} > after.txt"},
    },
    "name = \"two\"\n");

// One GET over a blocking socket (the server closes after it); the status line.
std::string http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out.substr(0, out.find("\r\n"));
}

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
  start_libuvs_threadpool();
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
  BOOST_TEST(max_threads == threads_before, "the engine started threads of its own");
  BOOST_TEST(ticks > 0);
  BOOST_REQUIRE(events.size() >= 6u);
  for (size_t i = 0; i < events.size(); ++i) BOOST_TEST(events[i].seq == static_cast<int64_t>(i + 1));
  BOOST_TEST(events.front().type == "run.started");
  BOOST_TEST(events.back().type == "run.finished");
  BOOST_TEST(events.back().data_json.find("\"succeeded\"") != std::string::npos);
  BOOST_TEST(events.back().json.find("\"type\":\"run.finished\"") != std::string::npos);

  auto run = h.engine->run(*id);
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->status == hearth::RunStatus::succeeded);
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
  BOOST_TEST(run->steps[1].status == hearth::StepStatus::cancelled);
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
  auto wf = h.workflow(hearth::testing::workflow_toml({
      {.id = "count", .run = "echo x >> count.txt"},
      {.id = "flaky", .needs = {"count"}, .run = "test -f ready"},
  }));
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

// The examples folder of the source tree (the agent examples' cassettes).
fs::path examples_dir() {
  const char* src = std::getenv("HEARTH_SOURCE_ROOT");
  return fs::path(src && *src ? src : HEARTH_SOURCE_DIR) / "examples";
}

BOOST_AUTO_TEST_CASE(steps_run_isolated_unless_the_workflow_chooses_local) {
  Host h;
  // A file beside the repository: a step on the host can read it, one in
  // the namespace sandbox cannot (it sees the repository at /workspace and a
  // fresh /tmp). Each probe exits with its own code when the escape worked.
  fs::path outside = h.dir.string() + "-outside";
  fs::create_directories(outside);
  std::ofstream(outside / "secret") << "s3cret";
  std::string probe = "test -e " + (outside / "secret").string() + " && exit 3; " +
                      "tail -n +3 /proc/net/dev | grep -v ' lo:' | grep -q . && exit 4; " +
                      "echo isolated > probe.txt";
  auto run_probe = [&](const std::string& sandbox_table) {
    auto wf = h.workflow(sandbox_table + "[[steps]]\nid = \"probe\"\nrun = '''" + probe + "'''\n");
    std::optional<hearth::RunResult> result;
    auto id = h.engine->start(wf, {}, [&](const hearth::RunResult& r) { result = r; });
    BOOST_REQUIRE_MESSAGE(id.ok(), why(id));
    uv_run(&h.loop, UV_RUN_DEFAULT);
    BOOST_REQUIRE(result.has_value());
    auto run = h.engine->run(*id);
    BOOST_REQUIRE(run.ok());
    BOOST_REQUIRE(run->steps.size() == 1u);
    return run->steps[0];
  };
  auto isolated = run_probe("");  // no [sandbox] table: the namespace backend
  BOOST_TEST(isolated.status == hearth::StepStatus::succeeded, isolated.reason);
  BOOST_TEST(isolated.exit_code.value_or(-1) == 0, "3: saw a host file outside the repository; 4: saw a network");
  BOOST_TEST(h.read("probe.txt") == "isolated\n");
  auto explicit_ns = run_probe("[sandbox]\nkind = \"namespace\"\n");
  BOOST_TEST(explicit_ns.exit_code.value_or(-1) == 0);
  auto local = run_probe("[sandbox]\nkind = \"local\"\n");  // the host: the file is there
  BOOST_TEST(local.status == hearth::StepStatus::failed);
  BOOST_TEST(local.exit_code.value_or(-1) == 3);
  std::error_code ec;
  fs::remove_all(outside, ec);
}

BOOST_AUTO_TEST_CASE(a_model_override_replays_a_cassette_and_the_store_keeps_result_and_transcript) {
  Host h;
  fs::copy(examples_dir() / "triage", h.dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::error_code ec;
  for (auto& e : fs::directory_iterator(h.dir / ".hearth", ec))
    if (e.path().filename().string().rfind("state.db", 0) == 0) fs::remove(e.path(), ec);
  auto loaded = hearth::load_workflow((h.dir / ".hearth/workflows/triage.toml").string());
  BOOST_REQUIRE_MESSAGE(loaded.workflow.has_value(), (loaded.errors.empty() ? std::string() : loaded.errors.front()));
  std::string report;
  h.engine->on_output([&](const std::string&, const std::string& step, std::string_view chunk) {
    if (step == "report") report += chunk;
  });
  std::optional<hearth::RunResult> result;
  // The workflow names a hosted model; the override plays the recording back offline.
  hearth::StartOptions opts;
  opts.payload_json = h.read("issue.json");
  opts.model = "replay:" + (h.dir / "cassette.jsonl").string();
  auto id = h.engine->start(*loaded.workflow, opts, [&](const hearth::RunResult& r) { result = r; });
  BOOST_REQUIRE_MESSAGE(id.ok(), why(id));
  uv_run(&h.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(result.has_value());
  BOOST_TEST(result->status == hearth::RunStatus::succeeded, result->error);
  BOOST_TEST(report.find("severity: high") != std::string::npos, report);

  auto run = h.engine->run(*id);
  BOOST_REQUIRE(run.ok());
  BOOST_REQUIRE(run->steps.size() == 2u);
  BOOST_TEST(run->steps[0].id == "triage");
  BOOST_TEST(run->steps[0].result_json.find(R"("labels":["crash"])") != std::string::npos, run->steps[0].result_json);
  BOOST_TEST(run->steps[1].result_json == "null");  // a run step has no result
  BOOST_REQUIRE(run->steps[1].attempt_list.size() == 1u);
  BOOST_TEST(run->steps[1].attempt_list[0].reason == "exited");
  BOOST_TEST(run->steps[1].attempt_list[0].output_tail.find("severity: high") != std::string::npos);
  BOOST_TEST(run->workflow_path == (h.dir / ".hearth/workflows/triage.toml").string());
  BOOST_TEST(run->json.find(R"("result":{)") != std::string::npos, run->json);  // the shape of `hearth show --json`

  auto transcripts = h.engine->transcripts(*id);
  BOOST_REQUIRE(transcripts.ok());
  BOOST_REQUIRE(transcripts->size() == 1u);
  const hearth::Transcript& t = transcripts->front();
  BOOST_TEST(t.step_id == "triage");
  BOOST_TEST(t.attempt == 1);
  BOOST_TEST(t.turns == 4);
  BOOST_TEST(t.json.find(R"("messages":[)") != std::string::npos);
  BOOST_TEST(t.json.find("docs/labels.md") != std::string::npos);  // a tool call of the agent
  BOOST_TEST(h.engine->transcripts(*id, "triage")->size() == 1u);
  BOOST_TEST(h.engine->transcripts(*id, "report")->empty());
  BOOST_TEST(*h.engine->has_run(*id));
  BOOST_TEST(!*h.engine->has_run("no-such-run"));
}

BOOST_AUTO_TEST_CASE(workflows_are_found_by_name_and_inputs_typed_from_text) {
  Host h;
  fs::create_directories(h.dir / ".hearth/workflows");
  std::ofstream(h.dir / ".hearth/workflows/build.toml")
      << "name = \"build\"\n[inputs]\nn = { type = \"integer\" }\nflag = { type = \"boolean\" }\n"
         "name = { type = \"string\" }\n[[steps]]\nid = \"a\"\nrun = \"true\"\n";
  auto found = hearth::find_workflow(h.dir.string(), "build");
  BOOST_REQUIRE_MESSAGE(found.ok(), why(found));
  BOOST_TEST(*found == (h.dir / ".hearth/workflows/build.toml").string());
  auto typo = hearth::find_workflow(h.dir.string(), "biuld");
  BOOST_REQUIRE(!typo.ok());
  BOOST_TEST(typo.message().find("did you mean 'build'") != std::string::npos, typo.message());
  BOOST_TEST(typo.message().find("available: build") != std::string::npos, typo.message());
  BOOST_TEST(!hearth::find_workflow(h.dir.string(), "nope/x.toml").ok());

  auto wf = hearth::load_workflow(*found);
  BOOST_REQUIRE(wf);
  BOOST_TEST(*wf.workflow->input_value("n", "12") == "12");
  BOOST_TEST(*wf.workflow->input_value("flag", "true") == "true");
  BOOST_TEST(*wf.workflow->input_value("name", "12") == "\"12\"");
  auto bad = wf.workflow->input_value("n", "twelve");
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.message().find("'n'") != std::string::npos, bad.message());

  // An unusable [inputs] schema is a load error, not a start error.
  auto broken = hearth::load_workflow_text("[inputs]\nn = { type = 12 }\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", "in.toml");
  BOOST_TEST(!broken);
  BOOST_TEST(hearth::format_duration(std::chrono::milliseconds(850)) == "850ms");
  BOOST_TEST(hearth::format_duration(std::chrono::milliseconds(245000)) == "4m05s");
}

// The `hearth` command's entry points (server.h, sandbox.h), as an embedding program uses them.

BOOST_AUTO_TEST_CASE(the_webhook_server_refuses_to_start_without_a_secret) {
  Host l;
  hearth::Server server(*l.engine, {.port = 0});
  auto s = server.start();
  BOOST_TEST(!s.ok());
  BOOST_TEST(why(s).find("webhook_secret") != std::string::npos);
  BOOST_TEST(server.address().empty());
  bool done = false;
  server.shutdown([&](bool) { done = true; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(done);
}

BOOST_AUTO_TEST_CASE(the_webhook_server_answers_on_the_hosts_loop_and_shuts_down) {
  Host l;
  hearth::Server server(*l.engine, {.port = 0, .webhook_secret = "s3cret", .api_token = "tok"});
  auto s = server.start();
  BOOST_REQUIRE_MESSAGE(s.ok(), why(s));
  std::string address = server.address();
  BOOST_TEST(address.rfind("127.0.0.1:", 0) == 0);
  // The client runs on a thread of its own; the server answers on this loop.
  std::string health, runs;
  uv_thread_t client;
  struct Ask {
    std::string address, *health, *runs;
    hearth::Server* server;
    uv_async_t done;
  } ask{address, &health, &runs, &server, {}};
  uv_async_init(&l.loop, &ask.done, [](uv_async_t* a) noexcept {
    static_cast<Ask*>(a->data)->server->shutdown(nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  ask.done.data = &ask;
  uv_thread_create(&client, [](void* p) {
    auto* a = static_cast<Ask*>(p);
    *a->health = http_get(a->address, "/healthz");
    *a->runs = http_get(a->address, "/runs");  // no token
    uv_async_send(&a->done);
  }, &ask);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  uv_thread_join(&client);
  BOOST_TEST(health == "HTTP/1.1 200 OK");
  BOOST_TEST(runs.find(" 401 ") != std::string::npos, runs);
  BOOST_TEST(!server.failed());
}

BOOST_AUTO_TEST_CASE(one_command_runs_in_the_local_backend_with_only_the_given_environment) {
  setenv("HEARTH_ENTRY_POINTS_LEAK", "visible", 1);
  std::string out;
  auto exit = hearth::run_sandboxed({.argv = {"/bin/sh", "-c", "echo \"$GREETING ${HEARTH_ENTRY_POINTS_LEAK:-unset}\"; exit 7"},
                                     .env = {"GREETING=hello"},
                                     .local = true},
                                    [&](std::string_view chunk) { out += chunk; });
  unsetenv("HEARTH_ENTRY_POINTS_LEAK");
  BOOST_REQUIRE_MESSAGE(exit.ok(), why(exit));
  BOOST_TEST(out == "hello unset\n");
  BOOST_TEST(exit->exit_status == 7);
  BOOST_TEST(!exit->timed_out);
}

BOOST_AUTO_TEST_CASE(a_command_past_its_timeout_is_killed_and_said_so) {
  auto exit = hearth::run_sandboxed({.argv = {"/bin/sleep", "30"}, .timeout = std::chrono::milliseconds(200), .local = true},
                                    [](std::string_view) {});
  BOOST_REQUIRE_MESSAGE(exit.ok(), why(exit));
  BOOST_TEST(exit->timed_out);
}

BOOST_AUTO_TEST_CASE(sizes_and_durations_parse_as_a_workflow_writes_them) {
  BOOST_TEST(*hearth::parse_size("512M") == 512ull << 20);
  BOOST_TEST(!hearth::parse_size("12 parsecs").ok());
  BOOST_TEST(hearth::parse_duration("1h30m")->count() == 90 * 60 * 1000);
  BOOST_TEST(!hearth::parse_duration("soon").ok());
}

BOOST_AUTO_TEST_SUITE_END()
