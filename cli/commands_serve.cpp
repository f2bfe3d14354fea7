// `hearth serve`: the webhook server (ci/serve.h) on this process's loop.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdlib>
#include <iostream>

#include "ci/serve.h"
#include "cli/cli.h"
#include "sandbox/sandbox.h"
#include "util/docs_link.h"

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
// (a local one inherits the engine's environment) ever sees it. main() has
// already moved the environment to the heap (hearth::scrub_process_environment),
// so /proc/<pid>/environ never showed it either.
std::string take_env(const char* name) {
  const char* v = std::getenv(name);
  std::string value = v ? v : "";
  unsetenv(name);
  return value;
}

// A secret file is the operator's, not a step's: any path is fine, but it
// must be a regular file of a sane size. One trailing newline (CR LF too) is
// dropped, as `echo` and editors add it.
Result<std::string> read_secret_file(const std::string& flag, const std::string& path) {
  constexpr size_t kMaxSecret = 64 * 1024;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Error{flag + " " + path + ": cannot open it: " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{flag + " " + path + ": not a regular file"};
  }
  std::string s(kMaxSecret + 1, '\0');
  size_t got = 0;
  for (ssize_t n; got < s.size() && (n = ::read(fd, s.data() + got, s.size() - got)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Error{flag + " " + path + ": cannot read it: " + std::strerror(errno)};
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got > kMaxSecret) return Error{flag + " " + path + ": larger than 64 KiB; is it the right file?"};
  s.resize(got);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.empty()) return Error{flag + " " + path + ": the file is empty"};
  return s;
}

// One secret of the server, from the first source that has it: the file
// named on the command line, the systemd credential `credential` (LoadCredential=
// puts it in $CREDENTIALS_DIRECTORY), then the environment variable. The
// variable is removed from the environment whichever source wins.
Result<std::string> server_secret(const std::string& flag, const std::string& file, const char* credential,
                                  const char* env_name) {
  std::string from_env = take_env(env_name);
  if (!file.empty()) return read_secret_file(flag, file);
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    std::string path = std::string(dir) + "/" + credential;
    if (::access(path.c_str(), F_OK) == 0) return read_secret_file("credential " + std::string(credential) + ":", path);
  }
  return from_env;
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
  auto webhook_secret =
      server_secret("--webhook-secret-file", args.webhook_secret_file, "webhook-secret", "HEARTH_WEBHOOK_SECRET");
  auto api_token = server_secret("--api-token-file", args.api_token_file, "api-token", "HEARTH_API_TOKEN");
  for (auto* r : {&webhook_secret, &api_token}) {
    if (!r->ok()) {
      std::cerr << r->message() << "\n";
      return kExitUsage;
    }
  }
  opts.webhook_secret = std::move(*webhook_secret);
  opts.api_token = std::move(*api_token);
  if (opts.webhook_secret.empty()) {
    std::cerr << "hearth serve needs the webhook secret (the same as in the GitHub webhook settings): pass "
                 "--webhook-secret-file PATH, or give it as the systemd credential webhook-secret, or set "
                 "HEARTH_WEBHOOK_SECRET\n";
    return kExitUsage;
  }
  opts.repo = resolve_repo(g);
  opts.jobs = args.jobs;
  opts.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(args.grace * 1000));
  opts.limits.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.request_timeout * 1000));
  opts.limits.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.idle_timeout * 1000));
  opts.limits.max_body_bytes = args.max_body;
  opts.limits.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.header_timeout * 1000));
  opts.limits.max_connections = args.max_connections;
  opts.limits.max_peer_pending_body_bytes = args.max_peer_pending;
  opts.limits.max_pending_body_bytes = args.max_pending;

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
                << "; workflows that do not set [sandbox] kind = \"local\" will be refused (" << docs_link("sandbox.md", "When the sandbox cannot start") << ")\n";
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
