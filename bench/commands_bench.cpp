// commands_bench: what a granted command adds to a call.
//
// In one run, p50/p99 over --n calls each:
//   direct   uv_spawn of the program (/bin/true) and its exit, on a loop: what
//            calling the real program costs without Hearth;
//   granted  uv_spawn of the shim (hearth-shim linked as `true`), which
//            connects to a broker on the same loop, which checks the grant and
//            uv_spawns /bin/true, then the exit frame back: what a sandboxed step
//            pays to call a granted command;
// Added = granted - direct. Target (docs/performance.md):
// <= 1.5x the shim floor.
// Run by hand: `ninja -C build bench/commands_bench && build/bench/commands_bench`.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "commands/broker.h"

namespace fs = std::filesystem;
using namespace hearth::commands;

namespace {

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// Spawns argv with uv_spawn on `loop` and runs the loop until it exits.
double timed_spawn(uv_loop_t* loop, const std::vector<std::string>& args, char** env) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  uv_process_t proc{};
  bool done = false;
  proc.data = &done;
  uv_process_options_t o{};
  o.file = argv[0];
  o.args = argv.data();
  o.env = env;
  uv_stdio_container_t stdio[3];
  for (auto& s : stdio) s.flags = UV_IGNORE;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  o.stdio_count = 3;
  o.stdio = stdio;
  o.exit_cb = [](uv_process_t* p, int64_t, int) noexcept {
    *static_cast<bool*>(p->data) = true;
    uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
  };
  auto t0 = std::chrono::steady_clock::now();
  if (uv_spawn(loop, &proc, &o) != 0) return -1;
  while (!done) uv_run(loop, UV_RUN_ONCE);
  uv_run(loop, UV_RUN_NOWAIT);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 300;
  const char* shim_bin = getenv("HEARTH_SHIM");
  std::string bin = shim_bin ? shim_bin : (fs::path(argv[0]).parent_path() / "../commands/hearth-shim").string();
  char tmpl[] = "/tmp/hearth-cmdbench-XXXXXX";
  fs::path dir = mkdtemp(tmpl);
  fs::create_symlink(fs::absolute(bin), dir / "true");
  uv_loop_t loop;
  uv_loop_init(&loop);

  auto policy = make_policy("true", {""}, {}, {}, "bench");
  BrokerOptions o;
  o.socket_path = (dir / "commands.sock").string();
  o.workspace = dir.string();
  o.commands.push_back(GrantedCommand{"true", "/bin/true", *policy, {"PATH=/usr/bin:/bin"}});
  auto broker = Broker::start(&loop, std::move(o));
  if (!broker) {
    std::fprintf(stderr, "%s\n", broker.message().c_str());
    return 1;
  }
  std::string e1 = "HEARTH_COMMAND_SOCKET=" + (dir / "commands.sock").string();
  std::string e2 = "HEARTH_WORKSPACE=" + dir.string();
  char* shim_env[] = {e1.data(), e2.data(), nullptr};
  char* plain_env[] = {nullptr};

  std::vector<double> direct, granted;
  for (int i = 0; i < 20; ++i) {  // warm up the page cache
    timed_spawn(&loop, {"/bin/true"}, plain_env);
    timed_spawn(&loop, {(dir / "true").string()}, shim_env);
  }
  for (int i = 0; i < n; ++i) {  // interleaved, so drift hits both alike
    direct.push_back(timed_spawn(&loop, {"/bin/true"}, plain_env));
    granted.push_back(timed_spawn(&loop, {(dir / "true").string()}, shim_env));
  }
  std::printf("calls: %d each, interleaved\n", n);
  std::printf("direct  /bin/true            p50 %.3f ms  p99 %.3f ms\n", pct(direct, 0.5), pct(direct, 0.99));
  std::printf("granted shim -> broker -> true p50 %.3f ms  p99 %.3f ms\n", pct(granted, 0.5), pct(granted, 0.99));
  std::printf("added by the grant            p50 %.3f ms  (target: 1.5x the shim floor, 0.84 ms x 1.5 = 1.26 ms)\n",
              pct(granted, 0.5) - pct(direct, 0.5));
  (*broker)->close(nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  fs::remove_all(dir);
}
