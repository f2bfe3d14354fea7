// A host program that owns its libuv loop and runs a Hearth workflow on it,
// next to its own 1 ms timer and a TCP echo server that it pings every
// 10 ms. It reports how late the timer fired and how long the echo took
// while the workflow ran: the engine must never block the loop.
//
//   hearth-embed-example WORKFLOW.toml [STATE_DIR]
//
// Exits with the run's exit code (0 succeeded), or 3 when the host's own
// work stopped while the run went on.
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <hearth/hearth.h>

namespace {

// The host's own periodic work: a timer that should fire every millisecond.
struct Ticker {
  uv_timer_t timer{};
  uint64_t last_ns = 0;
  std::vector<double> idle_ms, busy_ms;  // how much later than 1 ms after the previous tick
  std::vector<double>* lateness_ms = &idle_ms;  // busy_ms once the run has started

  void start(uv_loop_t* loop) {
    uv_timer_init(loop, &timer);
    timer.data = this;
    last_ns = uv_hrtime();
    uv_timer_start(&timer, [](uv_timer_t* t) noexcept {
      auto* self = static_cast<Ticker*>(t->data);
      uint64_t now = uv_hrtime();
      self->lateness_ms->push_back(std::max(0.0, (now - self->last_ns) / 1e6 - 1.0));
      self->last_ns = now;
    }, 1, 1);
  }
};

// The host's own TCP service: an echo server on 127.0.0.1, and a client of
// it that sends a byte every 10 ms and times the answer.
struct Echo {
  uv_tcp_t server{}, client{}, accepted{};
  uv_connect_t connect{};
  uv_timer_t ping{};
  uint64_t sent_ns = 0;
  bool waiting = false;
  std::vector<double> idle_ms, busy_ms;
  std::vector<double>* rtt_ms = &idle_ms;  // busy_ms once the run has started
  char buf[64];

  static Echo* of(void* p) { return static_cast<Echo*>(p); }

  int start(uv_loop_t* loop) {
    uv_tcp_init(loop, &server);
    uv_tcp_init(loop, &client);
    uv_tcp_init(loop, &accepted);
    uv_timer_init(loop, &ping);
    server.data = client.data = accepted.data = ping.data = connect.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (int rc = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&addr), 0)) return rc;
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 8, on_connection)) return rc;
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
    return uv_tcp_connect(&connect, &client, reinterpret_cast<const sockaddr*>(&bound), on_connected);
  }

  static void alloc(uv_handle_t* h, size_t, uv_buf_t* b) noexcept { *b = uv_buf_init(of(h->data)->buf, sizeof of(h->data)->buf); }

  static void on_connection(uv_stream_t* s, int status) noexcept {
    if (status < 0) return;
    auto* self = of(s->data);
    uv_accept(s, reinterpret_cast<uv_stream_t*>(&self->accepted));
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->accepted), alloc, [](uv_stream_t* c, ssize_t n, const uv_buf_t* b) noexcept {
      if (n <= 0) return;
      auto* req = new uv_write_t;
      auto* copy = new char[n];
      std::copy(b->base, b->base + n, copy);
      req->data = copy;
      uv_buf_t out = uv_buf_init(copy, static_cast<unsigned>(n));
      uv_write(req, c, &out, 1, [](uv_write_t* r, int) noexcept {
        delete[] static_cast<char*>(r->data);
        delete r;
      });
    });
  }

  static void on_connected(uv_connect_t* c, int status) noexcept {
    if (status < 0) return;
    auto* self = of(c->data);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->client), alloc, [](uv_stream_t* s, ssize_t n, const uv_buf_t*) noexcept {
      auto* self = of(s->data);
      if (n > 0 && self->waiting) {
        self->rtt_ms->push_back((uv_hrtime() - self->sent_ns) / 1e6);
        self->waiting = false;
      }
    });
    uv_timer_start(&self->ping, [](uv_timer_t* t) noexcept {
      auto* self = of(t->data);
      if (self->waiting) return;
      static char byte = 'x';
      auto* req = new uv_write_t;
      uv_buf_t b = uv_buf_init(&byte, 1);
      self->sent_ns = uv_hrtime();
      self->waiting = true;
      uv_write(req, reinterpret_cast<uv_stream_t*>(&self->client), &b, 1, [](uv_write_t* r, int) noexcept { delete r; });
    }, 10, 10);
  }

  void stop() {
    uv_timer_stop(&ping);
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&ping), reinterpret_cast<uv_handle_t*>(&client),
                           reinterpret_cast<uv_handle_t*>(&accepted), reinterpret_cast<uv_handle_t*>(&server)})
      uv_close(h, nullptr);
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s WORKFLOW.toml [STATE_DIR]\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  auto loaded = hearth::load_workflow(argv[1]);
  if (!loaded) {
    for (auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  // The run's workspace and state: a directory of ours, fresh each time.
  fs::path dir = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / ("hearth-embed-" + std::to_string(getpid()));
  fs::create_directories(dir);

  uv_loop_t loop;
  uv_loop_init(&loop);
  Ticker ticker;
  Echo echo;
  ticker.start(&loop);
  if (int rc = echo.start(&loop)) {
    std::fprintf(stderr, "echo server: %s\n", uv_strerror(rc));
    return 1;
  }

  auto engine = hearth::Engine::open(&loop, {.state_path = (dir / "state.db").string(), .repo = fs::absolute(dir).string()});
  if (!engine) {
    std::fprintf(stderr, "%s\n", engine.message().c_str());
    return 1;
  }
  int steps_done = 0;
  (*engine)->on_event([&](const hearth::Event& e) {
    if (e.type == "step.succeeded") ++steps_done;
  });

  // The host measures itself for a while with nothing else on the loop,
  // then starts the run and measures again until it ends.
  int exit_code = 1;
  uint64_t started = 0;
  uv_timer_t baseline{};
  uv_timer_init(&loop, &baseline);
  struct Ctx {
    hearth::Engine* engine;
    const hearth::Workflow* workflow;
    Ticker* ticker;
    Echo* echo;
    int* exit_code;
    int* steps_done;
    uint64_t* started;
  } ctx{engine->get(), &*loaded.workflow, &ticker, &echo, &exit_code, &steps_done, &started};
  baseline.data = &ctx;
  uv_timer_start(&baseline, [](uv_timer_t* t) noexcept {
    auto* c = static_cast<Ctx*>(t->data);
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    c->ticker->lateness_ms = &c->ticker->busy_ms;
    c->echo->rtt_ms = &c->echo->busy_ms;
    *c->started = uv_hrtime();
    auto id = c->engine->start(*c->workflow, {}, [c](const hearth::RunResult& r) {
      *c->exit_code = r.exit_code();
      std::printf("run %s %s: %d steps in %.1f ms\n", r.run_id.c_str(), hearth::to_string(r.status), *c->steps_done,
                  (uv_hrtime() - *c->started) / 1e6);
      uv_timer_stop(&c->ticker->timer);
      uv_close(reinterpret_cast<uv_handle_t*>(&c->ticker->timer), nullptr);
      c->echo->stop();
    });
    if (!id) {
      std::fprintf(stderr, "%s\n", id.message().c_str());
      uv_stop(t->loop);
    }
  }, 300, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  engine->reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "warning: handles left open on the loop\n");

  auto report = [](const char* what, const std::vector<double>& idle, const std::vector<double>& busy) {
    std::printf("%s: p50 %.3f ms, p99 %.3f ms, worst %.3f ms while the run ran (%zu samples); "
                "p50 %.3f ms, worst %.3f ms before it (%zu samples)\n",
                what, percentile(busy, 0.5), percentile(busy, 0.99), percentile(busy, 1.0), busy.size(),
                percentile(idle, 0.5), percentile(idle, 1.0), idle.size());
  };
  report("host timer lateness (1 ms period)", ticker.idle_ms, ticker.busy_ms);
  report("host echo round trip (every 10 ms)", echo.idle_ms, echo.busy_ms);
  if (argc <= 2) fs::remove_all(dir);
  if (exit_code == 0 && (ticker.busy_ms.empty() || echo.busy_ms.empty())) return 3;
  return exit_code;
}
