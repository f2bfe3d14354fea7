// `hearth serve`: the webhook server (ci/serve.h) on this process's loop.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ci/serve.h"
#include "cli/cli.h"
#include "sandbox/sandbox.h"

namespace hearth::cli {

namespace {

// HOST:PORT, [IPv6]:PORT; the port may be 0 (any free one).
bool split_listen(const std::string& listen, std::string& host, int& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) return false;
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string p = listen.substr(colon + 1);
  if (host.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  port = std::atoi(p.c_str());
  return port <= 65535;
}

// Reads a secret from the environment and removes it there, so that no step
// (they inherit the engine's environment) ever sees it.
std::string take_env(const char* name) {
  const char* v = std::getenv(name);
  std::string value = v ? v : "";
  unsetenv(name);
  return value;
}

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"--secret-file " + path + ": cannot read it"};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

struct Signals {
  uv_signal_t term{}, intr{};
};

}  // namespace

int command_serve(const Globals& g, const ServeArgs& args) {
  ci::ServeOptions opts;
  if (!split_listen(args.listen, opts.host, opts.port)) {
    std::cerr << "--listen " << args.listen << ": expected HOST:PORT, such as 127.0.0.1:8080\n";
    return kExitUsage;
  }
  opts.webhook_secret = take_env("HEARTH_WEBHOOK_SECRET");
  opts.api_token = take_env("HEARTH_API_TOKEN");
  if (!args.secret_file.empty()) {
    auto s = read_secret_file(args.secret_file);
    if (!s) {
      std::cerr << s.message() << "\n";
      return kExitUsage;
    }
    opts.webhook_secret = *s;
  }
  if (opts.webhook_secret.empty()) {
    std::cerr << "hearth serve needs the webhook secret: set HEARTH_WEBHOOK_SECRET or pass --secret-file PATH "
                 "(the same secret as in the GitHub webhook settings)\n";
    return kExitUsage;
  }
  opts.repo = resolve_repo(g);
  opts.jobs = args.jobs;
  opts.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(args.grace * 1000));
  opts.limits.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.request_timeout * 1000));
  opts.limits.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.idle_timeout * 1000));
  opts.limits.max_body_bytes = args.max_body;

  auto store = engine::Store::open(resolve_state(g, opts.repo));
  if (!store) {
    std::cerr << store.message() << "\n";
    return kExitRunFailed;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = kExitOk;
  {
    // Webhook-triggered steps run in the namespace sandbox unless their
    // workflow chose kind = "local"; where this host cannot run it, those
    // runs are refused with the reason (said once here, at start, too).
    auto isolated = sandbox::make_default_sandbox();
    auto local = sandbox::make_local_sandbox();
    if (auto why = isolated->unavailable(); !why.empty())
      std::cerr << "hearth serve: warning: " << why
                << "; workflows that do not set [sandbox] kind = \"local\" will be refused (docs/sandbox.md)\n";
    engine::Engine engine(&loop, **store, *isolated);
    engine.add_sandbox(*local);
    ci::Server server(&loop, **store, engine, opts);
    Signals sig;
    for (auto* s : {&sig.term, &sig.intr}) {
      uv_signal_init(&loop, s);
      s->data = &server;
      uv_unref(reinterpret_cast<uv_handle_t*>(s));
      uv_signal_start(s, [](uv_signal_t* h, int signum) noexcept {
        std::cerr << "hearth serve: " << (signum == SIGINT ? "SIGINT" : "SIGTERM") << ": shutting down\n";
        static_cast<ci::Server*>(h->data)->shutdown(nullptr);
      }, s == &sig.term ? SIGTERM : SIGINT);
    }
    if (auto s = server.start(); !s.ok()) {
      std::cerr << s.message() << "\n";
      rc = kExitRunFailed;
      server.shutdown(nullptr);
    } else {
      std::cout << "hearth serve: listening on http://" << server.address() << " (repo " << opts.repo
                << ", read endpoints " << (opts.api_token.empty() ? "off" : "on") << ")" << std::endl;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (server.failed()) rc = kExitRunFailed;
    uv_close(reinterpret_cast<uv_handle_t*>(&sig.term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sig.intr), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&loop) != 0) std::cerr << "hearth serve: handles left open at exit (a bug)\n";
  if (rc == kExitOk) std::cerr << "hearth serve: stopped\n";
  return rc;
}

}  // namespace hearth::cli
