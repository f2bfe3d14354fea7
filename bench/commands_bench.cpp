// commands_bench: what a granted command adds to a call.
//
// In one run, p50/p99 over --n calls each:
//   direct   uv_spawn of the program (/bin/true) and its exit, on a loop: what
//            calling the real program costs without Hearth;
//   granted  uv_spawn of the shim (hearth-shim linked as `true`), which
//            connects to a broker on the same loop, which checks the grant and
//            starts /bin/true, then the exit frame back: what a sandboxed step
//            pays to call a granted command;
//   jailed   the same with the broker's programs in a jail prepared once
//            (sandbox/jail.h), as a namespace step has them;
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
#include "sandbox/sandbox.h"

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
  // Two brokers: programs on the host, and programs in a jail prepared once
  // (sandbox/jail.h), as a step of the namespace sandbox gets them.
  auto start_broker = [&](const std::string& socket, std::shared_ptr<const hearth::sandbox::Jail> jail) {
    BrokerOptions o;
    o.socket_path = (dir / socket).string();
    o.workspace = dir.string();
    o.jail = std::move(jail);
    o.commands.push_back(GrantedCommand{"true", "/bin/true", *policy, {"PATH=/usr/bin:/bin"}});
    return Broker::start(&loop, std::move(o));
  };
  auto backend = hearth::sandbox::make_namespace_sandbox();
  if (!backend) {
    std::fprintf(stderr, "%s\n", backend.message().c_str());
    return 1;
  }
  hearth::sandbox::JailSpec spec;
  spec.workspace = dir.string();
  auto t0 = std::chrono::steady_clock::now();
  auto jail = (*backend)->prepare_jail(spec);
  double prepare_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!jail) {
    std::fprintf(stderr, "%s\n", jail.message().c_str());
    return 1;
  }
  auto broker = start_broker("commands.sock", nullptr);
  auto jailed_broker = start_broker("jailed.sock", *jail);
  if (!broker || !jailed_broker) {
    std::fprintf(stderr, "%s\n", (broker ? jailed_broker : broker).message().c_str());
    return 1;
  }
  std::string e1 = "HEARTH_COMMAND_SOCKET=" + (dir / "commands.sock").string();
  std::string e2 = "HEARTH_WORKSPACE=" + dir.string();
  std::string e3 = "HEARTH_COMMAND_SOCKET=" + (dir / "jailed.sock").string();
  char* shim_env[] = {e1.data(), e2.data(), nullptr};
  char* jailed_env[] = {e3.data(), e2.data(), nullptr};
  char* plain_env[] = {nullptr};

  std::vector<double> direct, granted, jailed;
  for (int i = 0; i < 20; ++i) {  // warm up the page cache
    timed_spawn(&loop, {"/bin/true"}, plain_env);
    timed_spawn(&loop, {(dir / "true").string()}, shim_env);
    timed_spawn(&loop, {(dir / "true").string()}, jailed_env);
  }
  for (int i = 0; i < n; ++i) {  // interleaved, so drift hits all alike
    direct.push_back(timed_spawn(&loop, {"/bin/true"}, plain_env));
    granted.push_back(timed_spawn(&loop, {(dir / "true").string()}, shim_env));
    jailed.push_back(timed_spawn(&loop, {(dir / "true").string()}, jailed_env));
  }
  std::printf("calls: %d each, interleaved; jail prepared once in %.3f ms\n", n, prepare_ms);
  std::printf("direct  /bin/true              p50 %.3f ms  p99 %.3f ms\n", pct(direct, 0.5), pct(direct, 0.99));
  std::printf("granted shim -> broker -> true p50 %.3f ms  p99 %.3f ms\n", pct(granted, 0.5), pct(granted, 0.99));
  std::printf("jailed  the same, in the jail  p50 %.3f ms  p99 %.3f ms\n", pct(jailed, 0.5), pct(jailed, 0.99));
  std::printf("added by the grant (jailed)    p50 %.3f ms  (target: 1.5x the shim floor, 0.84 ms x 1.5 = 1.26 ms)\n",
              pct(jailed, 0.5) - pct(direct, 0.5));
  (*jailed_broker)->close(nullptr);
  (*broker)->close(nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  fs::remove_all(dir);
}
