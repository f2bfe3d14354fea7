// The agent loop's own cost against the stand-in server (tests/support/model_server.*):
//   1. per-turn overhead: one harness, N turns against a zero-latency
//      stand-in; the time from the model response reaching the harness to
//      the next request leaving it (tool dispatch of a call that runs
//      nothing, building the checkpoint's JSON — and, in further runs,
//      serialising what a store would write: the new messages only, or the
//      whole state — events, building the next request),
//      measured by a client decorator; plus the whole turn for scale;
//   2. 200 harnesses at once on one loop, each with its own client, against a
//      stand-in answering after 200 ms: three turns each (read, bash, final
//      reply); wall time against one harness's, and peak RSS of the process
//      (the stand-in's thread included).
// Measures only; asserts nothing.
// Usage: harness_bench [turns] [harnesses] [--shared-client] [--no-bash] [--sandbox]
//   --shared-client: the 200 harnesses share one client (as the engine may, per run and model)
//   --no-bash: the second turn calls glob instead of bash (no process spawned)
//   --sandbox: bash runs in a namespace sandbox session per harness, as in an agent step
#include <fcntl.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "agent/harness.h"
#include "agent/local_bash.h"
#include "engine/agent_bash.h"
#include "tests/support/model_server.h"
#include "util/safe_open.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;
using testing::Reply;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

/// Forwards to a real client and notes when each response is delivered and
/// when the next request is sent.
class TimingClient final : public model::Client {
 public:
  explicit TimingClient(model::Client& inner) : inner_(inner) {}
  model::RequestId send(model::Request request, model::Stream stream) override {
    auto now = Clock::now();
    if (delivered_) overhead.push_back(ms(now - *delivered_));
    turn_start_ = now;
    auto done = std::move(stream.on_done);
    stream.on_done = [this, done = std::move(done)](model::Outcome o) {
      delivered_ = Clock::now();
      turn.push_back(ms(*delivered_ - turn_start_));
      done(std::move(o));
    };
    return inner_.send(std::move(request), std::move(stream));
  }
  bool cancel(model::RequestId id) override { return inner_.cancel(id); }
  const std::string& spec() const override { return inner_.spec(); }
  size_t active() const override { return inner_.active(); }

  std::vector<double> overhead;  // response delivered → next request sent
  std::vector<double> turn;      // request sent → response delivered

 private:
  model::Client& inner_;
  std::optional<Clock::time_point> delivered_;
  Clock::time_point turn_start_;
};

model::ClientOptions options(const testing::ModelServer& s) {
  model::ClientOptions o;
  o.base_url = s.url();
  o.api_key = "sk-bench";
  return o;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void run_until(uv_loop_t* loop, const std::function<bool()>& done) {
  while (!done()) uv_run(loop, UV_RUN_ONCE);
}

enum class Store { none, full, incremental };

void per_turn(uv_loop_t* loop, const std::string& ws, int turns, Store store) {
  testing::ModelServer server;
  for (int i = 0; i < turns - 1; ++i) server.push(Reply::call("c" + std::to_string(i), "noop", R"({"n": 1})", "Next."));
  server.push(Reply::say("done"));
  auto inner = model::make_client(loop, "anthropic/bench", options(server));
  TimingClient timing(**inner);
  agent::AgentSpec spec;
  spec.client = &timing;
  spec.workspace = ws;
  spec.tools = {"read", "write", "edit", "glob", "grep"};
  spec.instructions = "Benchmark.";
  spec.max_turns = turns + 1;
  size_t saved_bytes = 0;
  std::optional<agent::AgentOutcome> out;
  agent::HarnessCallbacks cb;
  cb.checkpoint = [&](const nlohmann::json& state) -> Status {
    // What a store would write: the whole state, or only the new messages.
    if (store == Store::full) saved_bytes = state.dump().size();
    if (store == Store::incremental) {
      size_t from = state["messages_saved"];
      const auto& msgs = state["messages"];
      saved_bytes = 0;
      for (size_t i = from; i < msgs.size(); ++i) saved_bytes += msgs[i].dump().size();
      for (const char* k : {"turns", "usage", "rejections", "bash_cwd"}) saved_bytes += state[k].dump().size();
    }
    return {};
  };
  cb.on_done = [&](const agent::AgentOutcome& o) { out = o; };
  auto h = agent::Harness::create(loop, spec, cb);
  if (!h) {
    std::printf("cannot create the harness: %s\n", h.message().c_str());
    return;
  }
  auto t0 = Clock::now();
  (void)(*h)->start();
  run_until(loop, [&] { return out.has_value(); });
  double total = ms(Clock::now() - t0);
  if (!out->ok()) std::printf("  failed: %s\n", out->reason.c_str());
  std::printf("per-turn overhead of the loop (%d turns, zero-latency stand-in, checkpoint %s):\n", turns,
              store == Store::none ? "not serialised"
              : store == Store::full ? "serialised whole with dump()"
                                     : "new messages serialised");
  std::printf("  response delivered -> next request sent: p50 %.3f ms  p90 %.3f ms  max %.3f ms\n",
              pct(timing.overhead, 0.5), pct(timing.overhead, 0.9), pct(timing.overhead, 1.0));
  size_t k = std::min<size_t>(10, timing.overhead.size());
  std::printf("  first %zu turns p50 %.3f ms; last %zu turns p50 %.3f ms (last write %zu bytes)\n", k,
              pct(std::vector<double>(timing.overhead.begin(), timing.overhead.begin() + k), 0.5), k,
              pct(std::vector<double>(timing.overhead.end() - k, timing.overhead.end()), 0.5), saved_bytes);
  std::printf("  whole model request p50 %.3f ms; whole run %.1f ms (%.3f ms a turn)\n", pct(timing.turn, 0.5), total,
              total / turns);
}

/// Turn 1: read; turn 2: bash; turn 3: the final reply. Picked per request so
/// that concurrent conversations each get theirs.
bool g_no_bash = false;

std::optional<Reply> three_turns(const testing::ReceivedRequest& r) {
  auto body = r.json();
  size_t assistant = 0;
  for (const auto& m : body["messages"]) assistant += m["role"] == "assistant";
  Reply reply = assistant == 0   ? Reply::call("r", "read", R"({"path": "notes.txt"})")
                : assistant == 1 ? (g_no_bash ? Reply::call("g", "glob", R"({"pattern": "*.txt"})")
                                              : Reply::call("b", "bash", R"({"command": "echo hi"})"))
                                 : Reply::say("done");
  reply.delay = std::chrono::milliseconds(200);
  return reply;
}

// --sandbox: each harness's bash runs as an agent step's does, through its
// own namespace sandbox session (SandboxBashSession), opened at its first call.
sandbox::Sandbox* g_sandbox = nullptr;
std::vector<UniqueFd> g_cwd_dirs;  // the sessions' cwd-file directories, open for the whole bench

std::unique_ptr<agent::BashSession> make_shell(uv_loop_t* loop, const std::string& ws, int i) {
  if (!g_sandbox) return std::make_unique<agent::LocalBashSession>(loop, ws);
  engine::SandboxBashOptions o;
  o.sandbox = g_sandbox;
  o.base.env = {"PATH=/usr/bin:/bin", "HOME=/home/hearth", "LANG=C.UTF-8"};
  o.base.isolation.workspace = ws;
  o.host_root = ws;
  g_cwd_dirs.emplace_back(::open(ws.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  o.cwd_dir_fd = g_cwd_dirs.back().get();
  o.cwd_file_name = ".cwd-" + std::to_string(i);
  o.cwd_file_inside = std::string(sandbox::kWorkspaceInside) + "/.cwd-" + std::to_string(i);
  return std::make_unique<engine::SandboxBashSession>(loop, std::move(o));
}

double run_many(uv_loop_t* loop, const std::string& ws, const testing::ModelServer& server, int n, bool shared) {
  std::unique_ptr<model::Client> client;
  if (shared) client = std::move(model::make_client(loop, "anthropic/bench", options(server)).value());
  std::vector<std::unique_ptr<agent::BashSession>> shells;
  std::vector<std::unique_ptr<agent::Harness>> harnesses;
  int done = 0, failed = 0;
  agent::HarnessCallbacks cb;
  cb.on_done = [&](const agent::AgentOutcome& o) {
    ++done;
    if (!o.ok()) {
      if (++failed == 1) std::printf("  failed: %s\n", o.reason.c_str());
    }
  };
  for (int i = 0; i < n; ++i) {
    shells.push_back(make_shell(loop, ws, i));
    agent::AgentSpec spec;
    spec.model = "anthropic/bench";
    spec.client_options = options(server);
    spec.client = client.get();
    spec.workspace = ws;
    spec.bash = shells.back().get();
    spec.instructions = "Benchmark.";
    auto h = agent::Harness::create(loop, spec, cb);
    if (!h) {
      std::printf("cannot create a harness: %s\n", h.message().c_str());
      std::exit(1);
    }
    harnesses.push_back(std::move(*h));
  }
  auto t0 = Clock::now();
  for (auto& h : harnesses) (void)h->start();
  run_until(loop, [&] { return done == n; });
  double wall = ms(Clock::now() - t0);
  if (failed) std::printf("  (%d of %d failed)\n", failed, n);
  harnesses.clear();
  shells.clear();
  client.reset();
  uv_run(loop, UV_RUN_NOWAIT);
  return wall;
}

/// The floor of the bash turns: `n` `bash -c 'echo hi'` started at once with
/// uv_spawn on the loop, until all have exited.
double spawn_floor(uv_loop_t* loop, int n) {
  struct Proc {
    uv_process_t handle{};
    int* exited = nullptr;
  };
  int exited = 0;
  std::vector<std::unique_ptr<Proc>> procs;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto p = std::make_unique<Proc>();
    p->exited = &exited;
    p->handle.data = p.get();
    char* argv[] = {const_cast<char*>("bash"), const_cast<char*>("-c"), const_cast<char*>("echo hi"), nullptr};
    uv_stdio_container_t stdio[3] = {{UV_IGNORE, {}}, {UV_IGNORE, {}}, {UV_IGNORE, {}}};
    uv_process_options_t o{};
    o.file = "bash";
    o.args = argv;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = [](uv_process_t* h, int64_t, int) {
      ++*static_cast<Proc*>(h->data)->exited;
      uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    };
    if (uv_spawn(loop, &p->handle, &o) != 0) {
      ++exited;
      uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), nullptr);
    }
    procs.push_back(std::move(p));
  }
  run_until(loop, [&] { return exited == n; });
  double wall = ms(Clock::now() - t0);
  uv_run(loop, UV_RUN_NOWAIT);
  return wall;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool shared = std::erase(args, "--shared-client") > 0;
  g_no_bash = std::erase(args, "--no-bash") > 0;
  std::unique_ptr<sandbox::Sandbox> ns;
  if (std::erase(args, "--sandbox") > 0) {
    auto made = sandbox::make_namespace_sandbox();
    if (!made) {
      std::printf("--sandbox: %s\n", made.message().c_str());
      return 1;
    }
    ns = std::move(*made);
    g_sandbox = ns.get();
  }
  int turns = args.size() > 0 ? std::atoi(args[0].c_str()) : 200;
  int many = args.size() > 1 ? std::atoi(args[1].c_str()) : 200;
  char tmpl[] = "/tmp/hearth-harness-bench-XXXXXX";
  std::string ws = mkdtemp(tmpl);
  std::ofstream(ws + "/notes.txt") << "the runner's disk is full\n";
  uv_loop_t loop;
  uv_loop_init(&loop);

  per_turn(&loop, ws, turns, Store::none);
  per_turn(&loop, ws, turns, Store::incremental);
  per_turn(&loop, ws, turns, Store::full);
  {
    testing::ModelServer server;
    server.set_responder(three_turns);
    double one = run_many(&loop, ws, server, 1, shared);
    double all = run_many(&loop, ws, server, many, shared);
    std::printf("%d harnesses at once on one loop, %s, 3 turns (read, %s, reply), 200 ms stand-in:\n", many,
                shared ? "one shared client" : "own client each",
                g_no_bash ? "glob" : g_sandbox ? "bash in a namespace session each" : "bash on the host");
    std::printf("  one harness %.0f ms; %d harnesses %.0f ms (ratio %.2f); peak RSS %ld MB\n", one, many, all,
                all / one, rss_mb());
    if (!g_no_bash) {
      std::printf("  floor: %d `bash -c 'echo hi'` spawned at once with uv_spawn: %.0f ms\n", many,
                  spawn_floor(&loop, many));
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  std::filesystem::remove_all(ws);
}
