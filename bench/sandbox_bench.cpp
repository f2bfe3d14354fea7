// Start-to-exit of `true`, in one run: plain uv_spawn (the floor), the
// namespace backend (full isolation), and bwrap with equivalent flags (the
// peer); then a command run in an already open namespace session (an agent's
// tool call) against posix_spawn + waitpid of /bin/true (docs/performance.md's
// spawn floor). The sides are interleaved (one of each per round, in a
// shuffled order), so a change of load on this shared machine hits every
// side alike; besides p50/p99 of each side it prints the median of the
// per-round ratios.
// docs/performance.md records the figures.
//   ./build/bench/sandbox_bench [rounds]
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

using namespace hearth::sandbox;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
  double p50, p99;
};

Figures summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

// One uv_spawn of argv to its exit, on `loop`.
double uv_spawn_once(uv_loop_t* loop, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  uv_process_t proc{};
  bool closed = false;
  proc.data = &closed;
  uv_process_options_t opts{};
  opts.file = argv[0];
  opts.args = argv.data();
  opts.exit_cb = [](uv_process_t* p, int64_t status, int) {
    if (status != 0) std::fprintf(stderr, "exit status %lld\n", static_cast<long long>(status));
    uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
  };
  auto t0 = Clock::now();
  if (int rc = uv_spawn(loop, &proc, &opts); rc != 0) {
    std::fprintf(stderr, "uv_spawn %s: %s\n", argv[0], uv_strerror(rc));
    std::exit(1);
  }
  while (!closed) uv_run(loop, UV_RUN_ONCE);  // a session's handles may stay open
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Start to exit of spec's command; with `spawned`, also appends how long
// spawn() itself took: the loop thread's part (the plan; the child is cloned
// on libuv's thread pool and builds its root there).
double sandbox_once(uv_loop_t* loop, Sandbox& box, const ExecSpec& spec, std::vector<double>* spawned = nullptr) {
  auto t0 = Clock::now();
  int64_t status = -1;
  bool ended = false;
  auto p = box.spawn(loop, spec, {nullptr, [&](const ExitInfo& e) {
                                    status = e.exit_status;
                                    ended = true;
                                  }});
  if (!p) {
    std::fprintf(stderr, "spawn: %s\n", p.message().c_str());
    std::exit(1);
  }
  if (spawned) spawned->push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  while (!ended) uv_run(loop, UV_RUN_ONCE);
  if (status != 0) std::fprintf(stderr, "exit status %lld\n", static_cast<long long>(status));
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// posix_spawn + waitpid of /bin/true: the spawn floor of docs/performance.md.
double posix_spawn_once() {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  char* env[] = {nullptr};
  auto t0 = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv, env) != 0) std::exit(1);
  int status = 0;
  waitpid(pid, &status, 0);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One command in an open session, from exec to on_exit.
double session_once(uv_loop_t* loop, SandboxSession& session, const ExecSpec& spec) {
  auto t0 = Clock::now();
  int64_t status = -1;
  bool ended = false;
  auto p = session.exec(spec, {nullptr, [&](const ExitInfo& e) {
                                 status = e.exit_status;
                                 ended = true;
                               }});
  if (!p) {
    std::fprintf(stderr, "exec: %s\n", p.message().c_str());
    std::exit(1);
  }
  while (!ended) uv_run(loop, UV_RUN_ONCE);
  if (status != 0) std::fprintf(stderr, "exit status %lld\n", static_cast<long long>(status));
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs `sides` `n` rounds after a warm-up of n/10 + 1; the times of side i
// are in out[i], in round order. Each round takes the sides in a new order
// (a fixed-seed shuffle): what one side leaves behind for the kernel to
// tear down (a sandbox's namespaces, bwrap's among them) lands on each of
// the others alike, not always on the one after it.
std::vector<std::vector<double>> interleaved(int n, const std::vector<std::function<double()>>& sides) {
  for (int i = 0; i < n / 10 + 1; ++i)
    for (auto& once : sides) once();
  std::vector<std::vector<double>> out(sides.size());
  std::vector<size_t> order(sides.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::mt19937 shuffle_seed(42);
  for (int i = 0; i < n; ++i) {
    std::shuffle(order.begin(), order.end(), shuffle_seed);
    for (size_t s : order) out[s].push_back(sides[s]());
  }
  return out;
}

// The median of a[i] / b[i] over the rounds.
double median_ratio(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size(); ++i) r.push_back(a[i] / b[i]);
  return summarize(r).p50;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string one, five;
  in >> one >> five;
  return one + " " + five;
}

}  // namespace


int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 300;
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto ns = make_namespace_sandbox();
  if (!ns) {
    std::fprintf(stderr, "%s\n", ns.message().c_str());
    return 1;
  }
  ExecSpec none;
  none.argv = {"true"};
  none.env = {"PATH=/usr/bin:/bin"};
  none.cwd = kWorkspaceInside;
  ExecSpec host = none;
  host.isolation.network = Network::host;
  // A step's usual shape: the workspace bound read-write (as root: an
  // id-mapped mount from its owner).
  char dir[] = "/var/tmp/hearth-bench-XXXXXX";
  ExecSpec ws = none;
  ws.isolation.workspace = ::mkdtemp(dir);
  const std::vector<std::string> bwrap = {"/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                                          "--clearenv", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr",
                                          "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                                          "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
                                          "--tmpfs", "/tmp", "/usr/bin/true"};
  std::string load_before = loadavg();
  std::vector<double> none_spawned, host_spawned, ws_spawned;
  auto t = interleaved(n, {[&] { return uv_spawn_once(&loop, {"/usr/bin/true"}); },
                           [&] { return sandbox_once(&loop, **ns, none, &none_spawned); },
                           [&] { return sandbox_once(&loop, **ns, host, &host_spawned); },
                           [&] { return uv_spawn_once(&loop, bwrap); },
                           [&] { return sandbox_once(&loop, **ns, ws, &ws_spawned); }});
  ::rmdir(dir);
  Figures floor = summarize(t[0]), nsf = summarize(t[1]), ns_host = summarize(t[2]), bw = summarize(t[3]),
          nsw = summarize(t[4]);
  std::printf("start-to-exit of `true`, %d rounds (sides interleaved), load %s   p50 ms   p99 ms\n", n,
              load_before.c_str());
  std::printf("uv_spawn (no isolation, the floor)             %6.2f   %6.2f\n", floor.p50, floor.p99);
  std::printf("namespace backend (network none)               %6.2f   %6.2f\n", nsf.p50, nsf.p99);
  std::printf("namespace backend (network host)               %6.2f   %6.2f\n", ns_host.p50, ns_host.p99);
  std::printf("namespace backend (network none, workspace)    %6.2f   %6.2f\n", nsw.p50, nsw.p99);
  std::printf("bwrap --unshare-all ... (equivalent flags)     %6.2f   %6.2f\n", bw.p50, bw.p99);
  std::printf("ratio namespace/bwrap p50: %.2f (median of rounds %.2f)   with workspace: %.2f (%.2f)   "
              "namespace/uv_spawn p50: %.2f\n",
              nsf.p50 / bw.p50, median_ratio(t[1], t[3]), nsw.p50 / bw.p50, median_ratio(t[4], t[3]),
              nsf.p50 / floor.p50);
  // spawn() runs on the caller's loop thread: its time is how long a
  // sandbox's start holds that loop up.
  auto worst = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("of which spawn() itself (the loop thread's part: the plan; the clone runs on the pool), p50: network none "
              "%.2f ms, host %.2f ms, none with workspace %.2f ms; p99 %.2f / %.2f / %.2f ms, worst %.2f ms\n",
              summarize(none_spawned).p50, summarize(host_spawned).p50, summarize(ws_spawned).p50,
              summarize(none_spawned).p99, summarize(host_spawned).p99, summarize(ws_spawned).p99,
              std::max({worst(none_spawned), worst(host_spawned), worst(ws_spawned)}));

  // An agent's tool calls: one session, many commands.
  auto session = (*ns)->open_session(&loop, none);
  if (!session) {
    std::fprintf(stderr, "open_session: %s\n", session.message().c_str());
    return 1;
  }
  ExecSpec bash = none;
  bash.argv = {"bash", "-c", "true"};
  // The PATH a step's commands get (the granted commands' directory first,
  // then the usual six): `true` is in the sixth directory.
  ExecSpec step_path = none;
  step_path.env = {"PATH=/run/hearth-grants/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  load_before = loadavg();
  auto s = interleaved(n, {posix_spawn_once, [&] { return session_once(&loop, **session, none); },
                           [&] { return uv_spawn_once(&loop, {"/bin/bash", "-c", "true"}); },
                           [&] { return session_once(&loop, **session, bash); },
                           [&] { return session_once(&loop, **session, step_path); }});
  (*session)->close(nullptr);
  session->reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  Figures spawn_floor = summarize(s[0]), in_session = summarize(s[1]), bash_floor = summarize(s[2]),
          bash_in_session = summarize(s[3]);
  std::printf("\ncommand in an open session, %d rounds (interleaved), load %s   p50 ms   p99 ms\n", n,
              load_before.c_str());
  std::printf("posix_spawn + waitpid of /bin/true (floor)     %6.2f   %6.2f\n", spawn_floor.p50, spawn_floor.p99);
  std::printf("session exec of `true`                         %6.2f   %6.2f\n", in_session.p50, in_session.p99);
  std::printf("uv_spawn of `bash -c true` (no isolation)      %6.2f   %6.2f\n", bash_floor.p50, bash_floor.p99);
  std::printf("session exec of `bash -c true`                 %6.2f   %6.2f\n", bash_in_session.p50, bash_in_session.p99);
  Figures long_path = summarize(s[4]);
  std::printf("session exec of `true`, a step's PATH            %6.2f   %6.2f   ratio to the floor p50: %.2f\n",
              long_path.p50, long_path.p99, long_path.p50 / spawn_floor.p50);
  std::printf("ratio session `true` / posix_spawn floor p50: %.2f (median of rounds %.2f; target <= 1.3)   "
              "session `bash -c true` / uv_spawn of it: %.2f\n",
              in_session.p50 / spawn_floor.p50, median_ratio(s[1], s[0]), bash_in_session.p50 / bash_floor.p50);

  // A step's timeout: `sleep 5` with timeout 500 ms and the default 2 s kill
  // grace. The init passes SIGTERM on, so `sleep` ends at the timeout, not
  // at the SIGKILL 2 s later.
  ExecSpec slow = none;
  slow.argv = {"sleep", "5"};
  slow.timeout = std::chrono::milliseconds(500);
  slow.kill_grace = std::chrono::seconds(2);
  std::vector<double> ended;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto p = (*ns)->spawn(&loop, slow, {nullptr, nullptr});
    if (!p) return 1;
    uv_run(&loop, UV_RUN_DEFAULT);
    ended.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::printf("\n`sleep 5` with timeout 500 ms, grace 2 s: ends after %.0f ms (p50 of 5)\n", summarize(ended).p50);
  uv_loop_close(&loop);
  return 0;
}
