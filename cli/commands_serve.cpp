// `hearth serve`: the webhook server (hearth/server.h) on this process's loop.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "hearth/server.h"

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

// The server's options from the command line; an error is a usage error.
Result<ServerOptions> server_options(const ServeArgs& args) {
  ServerOptions opts;
  if (!split_listen(args.listen, opts.host, opts.port))
    return Error{"--listen " + args.listen + ": expected HOST:PORT, such as 127.0.0.1:8080"};
  auto webhook_secret =
      server_secret("--webhook-secret-file", args.webhook_secret_file, "webhook-secret", "HEARTH_WEBHOOK_SECRET");
  auto api_token = server_secret("--api-token-file", args.api_token_file, "api-token", "HEARTH_API_TOKEN");
  for (auto* r : {&webhook_secret, &api_token})
    if (!r->ok()) return r->error();
  opts.webhook_secret = std::move(*webhook_secret);
  opts.api_token = std::move(*api_token);
  if (opts.webhook_secret.empty() && !args.work_only)
    return Error{"hearth serve needs the webhook secret (the same as in the GitHub webhook settings): pass "
                 "--webhook-secret-file PATH, or give it as the systemd credential webhook-secret, or set "
                 "HEARTH_WEBHOOK_SECRET"};
  auto ms = [](double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); };
  opts.jobs = args.jobs;
  opts.shutdown_grace = ms(args.grace);
  opts.request_timeout = ms(args.request_timeout);
  opts.idle_timeout = ms(args.idle_timeout);
  opts.header_timeout = ms(args.header_timeout);
  opts.max_body_bytes = args.max_body;
  opts.max_connections = args.max_connections;
  opts.max_peer_pending_body_bytes = args.max_peer_pending;
  opts.max_pending_body_bytes = args.max_pending;
  opts.accept = !args.work_only;
  opts.work = !args.accept_only;
  return opts;
}

}  // namespace

int command_serve(const Globals& g, const ServeArgs& args) {
  auto opts = server_options(args);
  if (!opts) {
    std::cerr << opts.message() << "\n";
    return kExitUsage;
  }
  bool api_on = !opts->api_token.empty();
  std::string repo = resolve_repo(g);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = kExitOk;
  {
    auto engine = Engine::open(&loop, {.state_path = resolve_state(g, repo),
                                       .repo = repo,
                                       .lease_timeout = std::chrono::milliseconds(
                                           static_cast<int64_t>(args.lease_timeout * 1000))});
    if (!engine) {
      std::cerr << engine.message() << "\n";
      uv_loop_close(&loop);
      return kExitRunFailed;
    }
    // Webhook-triggered steps run in the namespace sandbox unless their
    // workflow chose kind = "local"; where this host cannot run it, those
    // runs are refused with the reason (said once here, at start, too).
    if (auto why = (*engine)->sandbox_problem(); !why.empty())
      std::cerr << "hearth serve: warning: " << why
                << "; workflows that do not set [sandbox] kind = \"local\" will be refused\n";
    Server server(**engine, std::move(*opts));
    Signals sig;
    for (auto* s : {&sig.term, &sig.intr}) {
      uv_signal_init(&loop, s);
      s->data = &server;
      uv_unref(reinterpret_cast<uv_handle_t*>(s));
      uv_signal_start(s, [](uv_signal_t* h, int signum) noexcept {
        std::cerr << "hearth serve: " << (signum == SIGINT ? "SIGINT" : "SIGTERM") << ": shutting down\n";
        static_cast<Server*>(h->data)->shutdown(nullptr);
      }, s == &sig.term ? SIGTERM : SIGINT);
    }
    if (auto s = server.start(); !s.ok()) {
      std::cerr << s.message() << "\n";
      rc = kExitRunFailed;
      server.shutdown(nullptr);
    } else if (args.work_only) {
      std::cout << "hearth serve: working, no listener (repo " << repo << ")" << std::endl;
    } else {
      std::cout << "hearth serve: listening on http://" << server.address() << " (repo " << repo
                << ", read endpoints " << (api_on ? "on" : "off") << (args.accept_only ? ", accepting only" : "")
                << ")" << std::endl;
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
