// API proxy overhead (proxy/), against the tests' stand-in upstream on
// 127.0.0.1 (tests/support/upstream.*: one thread per connection, answers a
// small JSON echo):
//   1. latency per request, sequential on one kept-alive connection:
//      direct to the upstream (TCP, the floor); through the proxy's Unix
//      socket (the engine's side: parse, policy, rate, libcurl, redaction);
//      and from inside a namespace sandbox through the loopback forward to
//      the same proxy (the whole path a step uses);
//   2. requests/s through one proxy with --conns concurrent connections.
// Measures only; asserts nothing. `--client HOST PORT N` is the in-sandbox
// client (the bench runs itself there).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "proxy/server.h"
#include "sandbox/sandbox.h"
#include "tests/support/upstream.h"
#include "workflows/proxies.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

const char* kRequest = "GET /bench/item?x=1 HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n";

// Reads one response (Content-Length or chunked) from `fd`; false on EOF.
bool read_response(int fd, std::string& buf) {
  auto fill = [&]() {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  };
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return false;
  std::string head = buf.substr(0, end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t body = end + 4;
  if (auto cl = head.find("content-length:"); cl != std::string::npos) {
    size_t n = std::strtoul(head.c_str() + cl + 15, nullptr, 10);
    while (buf.size() < body + n)
      if (!fill()) return false;
    buf.erase(0, body + n);
    return true;
  }
  size_t done;
  while ((done = buf.find("\r\n0\r\n\r\n", body - 2)) == std::string::npos)
    if (!fill()) return false;
  buf.erase(0, done + 7);
  return true;
}

// `n` sequential requests on one connection; microseconds each.
std::vector<double> run_client(int fd, int n) {
  std::vector<double> us;
  std::string buf;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    if (::send(fd, kRequest, std::strlen(kRequest), MSG_NOSIGNAL) < 0 || !read_response(fd, buf)) break;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::close(fd);
  return us;
}

int connect_tcp(const char* host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  return fd;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void report(const char* what, const std::vector<double>& us, double floor_p50) {
  std::printf("%-48s n=%-6zu p50 %7.1f us  p90 %7.1f us  p99 %7.1f us", what, us.size(), pct(us, 0.5), pct(us, 0.9),
              pct(us, 0.99));
  if (floor_p50 > 0)
    std::printf("  added p50 %6.1f us (%.2fx)", pct(us, 0.5) - floor_p50, pct(us, 0.5) / floor_p50);
  std::printf("\n");
}

// Runs the in-sandbox client: this binary, in a namespace sandbox with the
// proxy's forwards, talking to 127.0.0.1:<proxy port>.
std::vector<double> from_sandbox(uv_loop_t* loop, proxy::ProxyServer* server, int n) {
  auto box = sandbox::make_namespace_sandbox();
  if (!box) {
    std::printf("(sandbox: %s)\n", box.message().c_str());
    return {};
  }
  std::string self = std::filesystem::canonical("/proc/self/exe").string();
  sandbox::ExecSpec spec;
  spec.argv = {self, "--client", "127.0.0.1", std::to_string(server->forwards()[1].port), std::to_string(n)};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = sandbox::kWorkspaceInside;
  spec.isolation.network = sandbox::Network::proxies;
  spec.isolation.forwards = server->forwards();
  std::string dir = std::filesystem::path(self).parent_path().string();
  spec.isolation.binds.push_back({dir, "", false});
  std::string out;
  bool exited = false;
  auto p = (*box)->spawn(loop, spec, {[&](std::string_view c) { out.append(c); }, [&](const sandbox::ExitInfo&) { exited = true; }});
  if (!p) {
    std::printf("(sandbox: %s)\n", p.message().c_str());
    return {};
  }
  while (!exited) uv_run(loop, UV_RUN_ONCE);
  std::vector<double> us;
  for (size_t at = 0; at < out.size();) {
    size_t nl = out.find('\n', at);
    us.push_back(std::atof(out.substr(at, nl - at).c_str()));
    at = nl == std::string::npos ? out.size() : nl + 1;
  }
  return us;
}

// Start-to-exit of /usr/bin/true in the namespace sandbox, `runs` times:
// own network namespace without and with the proxy's forwards (what
// network = "proxies" adds to a command's start).
void sandbox_start_cost(uv_loop_t* loop, proxy::ProxyServer* server, int runs) {
  auto box = sandbox::make_namespace_sandbox();
  if (!box) return;
  for (bool forwards : {false, true, false, true}) {
    std::vector<double> us;
    for (int i = 0; i < runs; ++i) {
      sandbox::ExecSpec spec;
      spec.argv = {"/usr/bin/true"};
      spec.env = {"PATH=/usr/bin:/bin"};
      spec.cwd = sandbox::kWorkspaceInside;
      spec.isolation.network = forwards ? sandbox::Network::proxies : sandbox::Network::none;
      if (forwards) spec.isolation.forwards = server->forwards();
      bool exited = false;
      auto t0 = Clock::now();
      auto p = (*box)->spawn(loop, spec, {nullptr, [&](const sandbox::ExitInfo&) { exited = true; }});
      if (!p) return;
      while (!exited) uv_run(loop, UV_RUN_ONCE);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    report(forwards ? "sandbox start-to-exit, network proxies (2 fwd)" : "sandbox start-to-exit, network none", us, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--client") {
    int fd = connect_tcp(argv[2], std::atoi(argv[3]));
    if (fd < 0) return 2;
    for (double u : run_client(fd, std::atoi(argv[4]))) std::printf("%.1f\n", u);
    return 0;
  }
  int n = 2000, conns = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--n") n = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--conns") conns = std::atoi(argv[i + 1]);
  }
  testing::Upstream up;
  char tmpl[] = "/tmp/hearth-proxy-bench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto cfg = workflows::parse_proxy_config_text("[proxies.api]\nupstream = \"" + up.url() +
                                                "\"\nheaders = { Authorization = \"Bearer ${{ secrets.T }}\" }\n"
                                                "allow = [ { method = \"GET\", path = \"/bench/**\" } ]\n"
                                                "deny = [ { path = \"/admin/**\" } ]\n",
                                            "bench.toml");
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.message().c_str());
    return 1;
  }
  auto secrets = std::make_shared<commands::SecretSet>();
  (void)secrets->add("T", "bench-secret-token-value");
  proxy::ProxyServerOptions o;
  o.socket_dir = dir;
  o.proxies.push_back({cfg->proxies[0], {{"Authorization", "Bearer bench-secret-token-value"}}});
  o.secrets = secrets;
  uint64_t events = 0;
  o.on_event = [&](const proxy::ProxyEvent&) { ++events; };
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto server = proxy::ProxyServer::start(&loop, std::move(o));
  if (!server) {
    std::fprintf(stderr, "%s\n", server.message().c_str());
    return 1;
  }
  std::string sock = dir + "/proxy-api.sock";

  std::printf("proxy_bench: %d sequential requests per path, GET with a ~300-byte JSON answer\n", n);
  run_client(connect_tcp("127.0.0.1", up.port()), 200);  // warm-up
  auto direct = run_client(connect_tcp("127.0.0.1", up.port()), n);
  std::vector<double> via;
  testing::while_loop_runs(&loop, [&] {
    run_client(connect_unix(sock), 200);  // warm-up: libcurl's connection pool
    via = run_client(connect_unix(sock), n);
    return std::string();
  });
  auto sandboxed = from_sandbox(&loop, *server, n);
  sandbox_start_cost(&loop, *server, 200);
  double floor = pct(direct, 0.5);
  report("direct to the upstream (TCP, the floor)", direct, 0);
  report("through the proxy's Unix socket", via, floor);
  report("from a namespace sandbox via the forward", sandboxed, floor);

  std::vector<std::vector<double>> per(static_cast<size_t>(conns));
  auto t0 = Clock::now();
  testing::while_loop_runs(&loop, [&] {
    std::vector<std::thread> ts;
    for (int c = 0; c < conns; ++c) ts.emplace_back([&, c] { per[static_cast<size_t>(c)] = run_client(connect_unix(sock), n); });
    for (auto& t : ts) t.join();
    return std::string();
  });
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  size_t total = 0;
  for (auto& v : per) total += v.size();
  std::printf("throughput: %zu requests on %d connections in %.2f s = %.0f requests/s through one proxy\n", total, conns,
              wall, static_cast<double>(total) / wall);
  t0 = Clock::now();
  {
    std::vector<std::thread> ts;
    std::vector<size_t> counts(static_cast<size_t>(conns));
    for (int c = 0; c < conns; ++c)
      ts.emplace_back([&, c] { counts[static_cast<size_t>(c)] = run_client(connect_tcp("127.0.0.1", up.port()), n).size(); });
    for (auto& t : ts) t.join();
    total = 0;
    for (auto k : counts) total += k;
  }
  wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("throughput floor: %zu requests direct on %d connections in %.2f s = %.0f requests/s\n", total, conns, wall,
              static_cast<double>(total) / wall);
  std::printf("events: %llu\n", static_cast<unsigned long long>(events));
  (*server)->close(nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  std::filesystem::remove_all(dir);
  return 0;
}
