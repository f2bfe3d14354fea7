// Model client overhead against the stand-in server (tests/support/model_server.*):
//   1. per-request overhead: N sequential requests against a zero-latency
//      stand-in, both providers (the time of a whole request over loopback:
//      HTTP, SSE decoding, assembly);
//   2. 200 concurrent requests against a stand-in that waits 200 ms before
//      answering: wall time against one request's, and peak RSS.
// Measures only; asserts nothing.
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "model/client.h"
#include "tests/support/model_server.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

model::Request request() {
  model::Request r;
  r.system = "You are terse.";
  r.messages.push_back(model::user_text("Say hello"));
  r.tools.push_back({"bash", "Run a command", {{"type", "object"}}});
  return r;
}

std::unique_ptr<model::Client> make(uv_loop_t* loop, const testing::ModelServer& s, const std::string& provider) {
  model::ClientOptions o;
  o.base_url = provider == "openai" ? s.url() + "/v1" : s.url();
  o.api_key = "sk-bench";
  auto c = model::make_client(loop, provider + "/bench", o);
  return std::move(c).value();
}

/// Sends `n` requests at once; returns the wall time until all finished.
double batch(uv_loop_t* loop, model::Client& c, int n) {
  int done = 0, failed = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    model::Stream s;
    s.on_done = [&](model::Outcome o) {
      ++done;
      if (!o.ok()) ++failed;
    };
    c.send(request(), std::move(s));
  }
  while (done < n) uv_run(loop, UV_RUN_ONCE);
  if (failed) std::printf("  (%d failed)\n", failed);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

long rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    testing::ModelServer server;
    testing::Reply reply = testing::Reply::call("c1", "bash", R"({"command": "ls -la"})", "Listing the files now.");
    server.set_default(reply);
    for (std::string provider : {"anthropic", "openai"}) {
      auto c = make(&loop, server, provider);
      for (int i = 0; i < 50; ++i) batch(&loop, *c, 1);  // warm the connection pool
      std::vector<double> t;
      for (int i = 0; i < 1000; ++i) t.push_back(batch(&loop, *c, 1));
      std::sort(t.begin(), t.end());
      std::printf("%-9s sequential request, zero-latency stand-in: p50 %.3f ms  p90 %.3f ms  (1000 requests)\n",
                  provider.c_str(), t[500], t[900]);
    }
  }
  {
    testing::ModelServer server;
    testing::Reply reply = testing::Reply::say("A short answer from a slow model.");
    reply.delay = std::chrono::milliseconds(200);
    server.set_default(reply);
    auto c = make(&loop, server, "anthropic");
    double one = batch(&loop, *c, 1);
    double all = batch(&loop, *c, 200);
    std::printf("200 concurrent requests, 200 ms stand-in: %.1f ms wall; one request %.1f ms; ratio %.2f; peak RSS %ld MB\n",
                all, one, all / one, rss_kb() / 1024);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
