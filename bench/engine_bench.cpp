// engine_bench: the engine core against its floors, measured in one process.
//
// Runs a generated workflow of `true` steps (a chain, where each step needs
// the previous one, and/or N independent steps run `--jobs` at a time)
// through the real Engine, a real SQLite store in a temporary directory and
// the local sandbox, and compares it with floors measured in the same run:
//   - posix_spawn + waitpid of exactly what the engine runs per step
//     (bash --noprofile --norc -eo pipefail -c true, full environment), and
//     of /bin/true for reference;
//   - the local sandbox alone starting that same spec on a bare loop;
//   - one SQLite WAL commit of a ~200-byte row, synchronous=FULL, on the
//     same filesystem as the run's store.
// A thin VFS shim counts SQLite's file writes and syncs, so the time the
// store reports per commit (Store::commit_time, from begin() to the return of commit(), the loop thread's share) can
// be split into file I/O and everything else.
//
// Prints both sides and the ratios; see docs/performance.md. Benchmarks are
// run by hand: `ninja -C build bench/engine_bench && build/bench/engine_bench`.
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/engine.h"
#include "engine/sqlite_store.h"
#include "sandbox/sandbox.h"
#include "workflows/loader.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using namespace hearth;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
double to_ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double p50 = 0, mean = 0;
  size_t n = 0;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.p50 = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  return s;
}

double median(std::vector<double> v) { return stats_of(std::move(v)).p50; }

// A directory under `base`, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& base) {
    std::string tmpl = base + "/hearth-bench-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror(("mkdtemp " + tmpl).c_str());
      std::exit(2);
    }
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string filesystem_kind(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(fs.f_type));
  return hex;
}

// CPU time of this process and of its reaped children, in milliseconds.
struct CpuTimes {
  double self_ms = 0, children_ms = 0;
};
CpuTimes cpu_now() {
  auto ms = [](const rusage& u) {
    return (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000.0) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000.0;
  };
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return {ms(self), ms(children)};
}

// Resident set of this process now, in MiB: what fork() has to copy the
// page tables of.
double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string one, five;
  in >> one >> five;
  return one + " " + five;
}

// ---- SQLite file I/O accounting: a VFS shim over the default VFS ----------

struct IoCounters {
  int64_t syncs = 0, writes = 0, write_bytes = 0;
  std::chrono::nanoseconds sync_time{0}, write_time{0};
  IoCounters operator-(const IoCounters& o) const {
    return {syncs - o.syncs, writes - o.writes, write_bytes - o.write_bytes, sync_time - o.sync_time,
            write_time - o.write_time};
  }
};
IoCounters g_io;  // what the loop thread's SQLite does (it stalls the loop)
std::thread::id g_loop_thread = std::this_thread::get_id();
bool on_loop_thread() { return std::this_thread::get_id() == g_loop_thread; }

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;  // allocated right after this struct
};
sqlite3_vfs* g_real_vfs = nullptr;

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

int shim_close(sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); }
int shim_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return real_of(f)->pMethods->xRead(real_of(f), b, n, o); }
int shim_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (!on_loop_thread()) return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);  // a checkpoint on the threadpool
  auto t = Clock::now();
  int rc = real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
  g_io.write_time += Clock::now() - t;
  g_io.writes += 1;
  g_io.write_bytes += n;
  return rc;
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) { return real_of(f)->pMethods->xTruncate(real_of(f), size); }
int shim_sync(sqlite3_file* f, int flags) {
  if (!on_loop_thread()) return real_of(f)->pMethods->xSync(real_of(f), flags);
  auto t = Clock::now();
  int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
  g_io.sync_time += Clock::now() - t;
  g_io.syncs += 1;
  return rc;
}
int shim_file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int shim_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int shim_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int shim_check_reserved(sqlite3_file* f, int* out) { return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out); }
int shim_file_control(sqlite3_file* f, int op, void* arg) { return real_of(f)->pMethods->xFileControl(real_of(f), op, arg); }
int shim_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int shim_device(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int shim_shm_map(sqlite3_file* f, int pg, int sz, int extend, void volatile** p) {
  return real_of(f)->pMethods->xShmMap(real_of(f), pg, sz, extend, p);
}
int shim_shm_lock(sqlite3_file* f, int off, int n, int flags) { return real_of(f)->pMethods->xShmLock(real_of(f), off, n, flags); }
void shim_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int shim_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }
int shim_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) { return real_of(f)->pMethods->xFetch(real_of(f), o, n, p); }
int shim_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) { return real_of(f)->pMethods->xUnfetch(real_of(f), o, p); }

const sqlite3_io_methods kShimMethods = {
    3,          shim_close,    shim_read,      shim_write,     shim_truncate,    shim_sync,
    shim_file_size, shim_lock, shim_unlock,    shim_check_reserved, shim_file_control, shim_sector_size,
    shim_device, shim_shm_map, shim_shm_lock,  shim_shm_barrier, shim_shm_unmap,  shim_fetch,
    shim_unfetch};

int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  int rc = g_real_vfs->xOpen(g_real_vfs, name, shim->real, flags, out_flags);
  shim->base.pMethods = shim->real->pMethods ? &kShimMethods : nullptr;
  return rc;
}

// Registers the shim as the default VFS, so the engine's store (opened with
// the default) goes through it. The unix VFS's files are version 3.
void install_io_shim() {
  static sqlite3_vfs shim;
  g_real_vfs = sqlite3_vfs_find(nullptr);
  shim = *g_real_vfs;
  shim.zName = "hearth-bench-io";
  shim.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real_vfs->szOsFile;
  shim.pAppData = nullptr;
  shim.xOpen = shim_open;
  sqlite3_vfs_register(&shim, /*makeDflt=*/1);
}

// ---- floors --------------------------------------------------------------

// What the engine hands the sandbox for one step (Attempt::prepare, engine/attempt.cpp).
sandbox::ExecSpec step_spec(const std::string& repo) {
  sandbox::ExecSpec spec;
  spec.argv = {"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "true"};
  for (char** e = environ; *e; ++e) spec.env.emplace_back(*e);
  spec.env.push_back("HEARTH_OUTPUT=" + repo + "/.hearth/tmp/run-0123456789abcdef/s0000.1.out");
  spec.env.push_back("HEARTH_RUN_ID=run-0123456789abcdef");
  spec.env.push_back("HEARTH_STEP_ID=s0000");
  spec.env.push_back("HEARTH_WORKSPACE=" + repo);
  spec.cwd = repo;
  return spec;
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

pid_t spawn_or_die(const std::vector<char*>& argv, const std::vector<char*>& env) {
  pid_t pid = 0;
  if (int rc = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), env.data()); rc != 0) {
    std::fprintf(stderr, "posix_spawnp %s: %s\n", argv[0], std::strerror(rc));
    std::exit(2);
  }
  return pid;
}

// posix_spawn + waitpid, one at a time: milliseconds per sample.
std::vector<double> spawn_floor(const std::vector<std::string>& argv_s, const std::vector<std::string>& env_s, int n) {
  auto argv = c_strings(argv_s), env = c_strings(env_s);
  std::vector<double> samples;
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    pid_t pid = spawn_or_die(argv, env);
    int status = 0;
    waitpid(pid, &status, 0);
    samples.push_back(ms_between(t, Clock::now()));
  }
  return samples;
}

// posix_spawn + waitpid keeping `in_flight` processes running: wall per process.
double spawn_floor_parallel(const std::vector<std::string>& argv_s, const std::vector<std::string>& env_s, int n,
                            int in_flight) {
  auto argv = c_strings(argv_s), env = c_strings(env_s);
  auto t = Clock::now();
  int started = 0, running = 0;
  while (started < n || running > 0) {
    while (running < in_flight && started < n) {
      spawn_or_die(argv, env);
      ++started, ++running;
    }
    int status = 0;
    if (waitpid(-1, &status, 0) > 0) --running;
  }
  return ms_between(t, Clock::now()) / n;
}

// The local sandbox alone: spawn the step's spec on a bare loop and run the
// loop until its handles have closed. Milliseconds per sample.
std::vector<double> sandbox_floor(const sandbox::ExecSpec& spec, int n) {
  auto sb = sandbox::make_local_sandbox();
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<double> samples;
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    bool exited = false;
    sandbox::ExecCallbacks cb;
    cb.on_exit = [&](const sandbox::ExitInfo&) { exited = true; };
    auto p = sb->spawn(&loop, spec, std::move(cb));
    if (!p) {
      std::fprintf(stderr, "sandbox spawn: %s\n", p.message().c_str());
      std::exit(2);
    }
    while (!exited) uv_run(&loop, UV_RUN_ONCE);
    samples.push_back(ms_between(t, Clock::now()));
    uv_run(&loop, UV_RUN_DEFAULT);  // let the handles close, outside the sample
  }
  if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "warning: the sandbox floor leaked a handle\n");
  return samples;
}

void sql_or_die(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    std::exit(2);
  }
}

struct CommitFloor {
  Stats ms;
  IoCounters io;  // over all samples
};

// One WAL commit of a ~200-byte row with synchronous=FULL, `n` times.
CommitFloor commit_floor(const std::string& dir, int n) {
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/floor.db").c_str(), &db) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite open %s/floor.db failed\n", dir.c_str());
    std::exit(2);
  }
  sql_or_die(db, "PRAGMA journal_mode=WAL");
  sql_or_die(db, "PRAGMA synchronous=FULL");
  sql_or_die(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, data TEXT NOT NULL)");
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (at, data) VALUES (?, ?)", -1, &ins, nullptr);
  const std::string row(200, 'x');
  for (int i = 0; i < 20; ++i) {  // warm up: file growth, the WAL's first frames
    sql_or_die(db, "BEGIN IMMEDIATE");
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_text(ins, 2, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    sqlite3_step(ins);
    sqlite3_reset(ins);
    sql_or_die(db, "COMMIT");
  }
  std::vector<double> samples;
  IoCounters before = g_io;
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    sql_or_die(db, "BEGIN IMMEDIATE");
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_text(ins, 2, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) std::exit(2);
    sqlite3_reset(ins);
    sql_or_die(db, "COMMIT");
    samples.push_back(ms_between(t, Clock::now()));
  }
  CommitFloor f{stats_of(samples), g_io - before};
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return f;
}

// ---- the engine ----------------------------------------------------------

std::string workflow_text(int steps, bool chain) {
  std::string text = "name = \"bench-" + std::string(chain ? "chain" : "wide") + "\"\n";
  char id[32], prev[32];
  for (int i = 0; i < steps; ++i) {
    std::snprintf(id, sizeof id, "s%04d", i);
    text += "\n[[steps]]\nid = \"" + std::string(id) + "\"\n";
    if (chain && i > 0) text += "needs = [\"" + std::string(prev) + "\"]\n";
    text += "run = \"true\"\n";
    std::memcpy(prev, id, sizeof id);
  }
  return text;
}

// The loop's longest stretch away from waiting for events: from the end of
// one poll's wait to the start of the next (I/O callbacks, timers, idle
// work, commits, spawns). libuv's idle-time metric gives the wait itself.
struct StallMeter {
  uv_loop_t* loop;
  uv_prepare_t prepare{};
  uv_check_t check{};
  uint64_t check_at = 0, prepare_at = 0, idle_at_prepare = 0, callbacks_in_poll = 0;
  uint64_t worst_ns = 0;
  explicit StallMeter(uv_loop_t* l) : loop(l) {
    uv_prepare_init(loop, &prepare);
    uv_check_init(loop, &check);
    prepare.data = check.data = this;
    uv_prepare_start(&prepare, [](uv_prepare_t* h) noexcept {
      auto* m = static_cast<StallMeter*>(h->data);
      uint64_t now = uv_hrtime();
      if (m->check_at) m->worst_ns = std::max(m->worst_ns, m->callbacks_in_poll + (now - m->check_at));
      m->prepare_at = now;
      m->idle_at_prepare = uv_metrics_idle_time(m->loop);
    });
    uv_check_start(&check, [](uv_check_t* h) noexcept {
      auto* m = static_cast<StallMeter*>(h->data);
      m->check_at = uv_hrtime();
      uint64_t idle = uv_metrics_idle_time(m->loop) - m->idle_at_prepare;
      uint64_t in_poll = m->check_at - m->prepare_at;
      m->callbacks_in_poll = in_poll > idle ? in_poll - idle : 0;
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(&prepare));
    uv_unref(reinterpret_cast<uv_handle_t*>(&check));
  }
  void close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  }
};

struct RunFigures {
  double worst_stall_ms = 0;  // StallMeter
  int64_t syncs = 0;          // fsyncs of the log on the threadpool (Store::syncs)
  double wall_ms = 0;
  int64_t commits = 0;
  double commit_ms = 0;  // Store::commit_time: begin() to commit()'s return, summed
  double durable_wait_ms = 0;  // SqliteStore::durable_wait: waiters waiting for the pool's write and fsync
  IoCounters io;
  CpuTimes cpu;                 // used during the run
  double rss_start = 0, rss_end = 0;  // MiB, at start() and at on_finished
};

// One run of `wf` in a fresh directory (fresh state.db), timed from start()
// until the loop has nothing left. Exits on any failure: figures of a broken
// run are worthless.
RunFigures run_once(const workflows::Workflow& wf, const std::string& base, int jobs) {
  TempDir dir(base);
  auto store = engine::Store::open((dir.path / ".hearth" / "state.db").string());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.message().c_str());
    std::exit(2);
  }
  auto sb = sandbox::make_local_sandbox();
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_loop_configure(&loop, UV_METRICS_IDLE_TIME);
  StallMeter stalls(&loop);
  RunFigures f;
  hearth::RunResult outcome;
  int finished = 0;
  {
    engine::Engine eng(&loop, **store, *sb);
    hearth::StartOptions opts;
    opts.repo = dir.path.string();
    opts.jobs = jobs;
    int64_t commits0 = (*store)->commits();
    auto commit0 = (*store)->commit_time();
    auto* sqlite = dynamic_cast<engine::SqliteStore*>(store->get());  // durable_wait is SQLite's alone
    auto wait0 = sqlite ? sqlite->durable_wait() : std::chrono::nanoseconds{0};
    IoCounters io0 = g_io;
    CpuTimes cpu0 = cpu_now();
    f.rss_start = rss_mib();
    auto t = Clock::now();
    auto id = eng.start(wf, nlohmann::json::object(), opts, [&](const hearth::RunResult& o) {
      outcome = o;
      ++finished;
      f.rss_end = rss_mib();
    });
    if (!id) {
      std::fprintf(stderr, "start: %s\n", id.message().c_str());
      std::exit(2);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    f.wall_ms = ms_between(t, Clock::now());
    f.commits = (*store)->commits() - commits0;
    f.commit_ms = to_ms((*store)->commit_time() - commit0);
    if (sqlite) f.durable_wait_ms = to_ms(sqlite->durable_wait() - wait0);
    f.io = g_io - io0;
    f.syncs = (*store)->syncs();
    f.worst_stall_ms = static_cast<double>(stalls.worst_ns) / 1e6;
    stalls.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CpuTimes cpu1 = cpu_now();
    f.cpu = {cpu1.self_ms - cpu0.self_ms, cpu1.children_ms - cpu0.children_ms};
  }
  if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "warning: the engine run leaked a handle\n");
  auto steps = (*store)->load_steps(outcome.run_id);
  size_t ok = 0;
  if (steps)
    for (auto& s : *steps) ok += s.status == StepStatus::succeeded;
  if (finished != 1 || outcome.status != hearth::RunStatus::succeeded || ok != wf.steps.size()) {
    std::fprintf(stderr, "the run did not succeed: %s (%zu of %zu steps succeeded) %s\n", hearth::to_string(outcome.status),
                 ok, wf.steps.size(), outcome.error.c_str());
    std::exit(2);
  }
  return f;
}

struct Floors {
  Stats bash, bin_true, sandbox;
  double bash_parallel_ms = 0;  // per process, `jobs` in flight
  CommitFloor commit;
};

void print_ratio(const char* what, double value, double target, const char* target_unit) {
  std::printf("  %-54s %8.3f ms  target <= %.3f %s: ratio %.2f %s\n", what, value, target, target_unit, value / target,
              value <= target ? "ok" : "OVER");
}

template <class F>
double median_of(const std::vector<RunFigures>& runs, F f) {
  std::vector<double> v;
  for (auto& r : runs) v.push_back(f(r));
  return median(v);
}

void report_shape(const char* shape, const workflows::Workflow& wf, double load_ms, const std::vector<RunFigures>& runs,
                  const Floors& fl, int jobs) {
  const double n = static_cast<double>(wf.steps.size());
  auto per_commit = [](const RunFigures& r, std::chrono::nanoseconds t) { return to_ms(t) / static_cast<double>(r.commits); };
  double wall = median_of(runs, [](auto& r) { return r.wall_ms; });
  double ncommits = median_of(runs, [](auto& r) { return static_cast<double>(r.commits); });
  double cms = median_of(runs, [](auto& r) { return r.commit_ms; });
  double checkpoint = median_of(runs, [](auto& r) { return r.commit_ms / static_cast<double>(r.commits); });
  std::printf("\n%s: %d steps, jobs=%d, %zu runs, medians (wall of each run:", shape, static_cast<int>(n), jobs, runs.size());
  for (auto& r : runs) std::printf(" %.0f", r.wall_ms);
  std::printf(" ms; loadavg %s)\n", loadavg().c_str());
  std::printf("  %-54s %8.1f ms  (before the run, not in its wall time)\n", "load_workflow_text", load_ms);
  std::printf("  %-54s %8.1f ms\n", "wall, start() to loop empty", wall);
  std::printf("  %-54s %8.3f ms\n", "wall per step", wall / n);
  std::printf("  %-54s %8.3f ms\n", "  floor: mean spawn+wait of the step's bash command", fl.bash.mean);
  print_ratio("engine overhead per step: (wall - N x spawn) / N", (wall - n * fl.bash.mean) / n, 0.5, "ms (issue)");
  print_ratio("beyond spawn + commits: (wall - N x spawn - ct) / N", (wall - n * fl.bash.mean - cms) / n, 0.3,
              "ms (docs/performance.md)");
  double dw = median_of(runs, [](auto& r) { return r.durable_wait_ms; });
  print_ratio("  the same, the durable wait dw counted: - ct - dw", (wall - n * fl.bash.mean - cms - dw) / n, 0.3,
              "ms (commits as a whole)");
  std::printf("  %-54s %8.3f ms per step  (the pool's write and fsync the run waited for)\n", "  dw = SqliteStore::durable_wait",
              dw / n);
  if (jobs > 1) {
    std::printf("  %-54s %8.3f ms\n", "  floor: spawn+wait with jobs in flight, per process", fl.bash_parallel_ms);
    print_ratio("overhead per step vs that floor: wall / N - floor", wall / n - fl.bash_parallel_ms, 0.5, "ms (issue)");
  }
  std::printf("  %-54s %8.3f ms  (its children: %.3f ms; RSS %.0f -> %.0f MiB)\n", "CPU of the engine process per step",
              median_of(runs, [](auto& r) { return r.cpu.self_ms; }) / n,
              median_of(runs, [](auto& r) { return r.cpu.children_ms; }) / n,
              median_of(runs, [](auto& r) { return r.rss_start; }), median_of(runs, [](auto& r) { return r.rss_end; }));
  std::printf("  %-54s %8.0f  (%.3f per step)\n", "commits", ncommits, ncommits / n);
  std::printf("  %-54s %8.1f ms  (%.1f%% of wall)\n", "ct = Store::commit_time (begin() to commit() returning), summed", cms,
              100 * cms / wall);
  print_ratio("checkpoint: ct / commits", checkpoint, 1.3 * fl.commit.ms.mean, "ms (1.3 x FULL commit)");
  std::printf("  %-54s %8.2f x one FULL commit (floor mean %.3f ms)\n", "  checkpoint / floor", checkpoint / fl.commit.ms.mean,
              fl.commit.ms.mean);
  std::printf("  %-54s %8.3f ms  (sync %.3f ms; %.2f syncs, %.0f bytes written)\n", "  of which SQLite write+sync on the loop, per commit",
              median_of(runs, [&](auto& r) { return per_commit(r, r.io.sync_time + r.io.write_time); }),
              median_of(runs, [&](auto& r) { return per_commit(r, r.io.sync_time); }),
              median_of(runs, [](auto& r) { return static_cast<double>(r.io.syncs) / static_cast<double>(r.commits); }),
              median_of(runs, [](auto& r) { return static_cast<double>(r.io.write_bytes) / static_cast<double>(r.commits); }));
  std::printf("  %-54s %8.0f /s  (floor: %.0f /s)\n", "commits per second of commit time", 1000 * ncommits / cms,
              1000 / fl.commit.ms.mean);
  std::printf("  %-54s %8.0f /s\n", "commits per second of wall", 1000 * ncommits / wall);
  std::printf("  %-54s %8.0f  (%.3f per commit)\n", "fsyncs of the log on the threadpool",
              median_of(runs, [](auto& r) { return static_cast<double>(r.syncs); }),
              median_of(runs, [](auto& r) { return static_cast<double>(r.syncs) / static_cast<double>(r.commits); }));
  std::printf("  %-54s %8.3f ms  (each run's worst:", "worst loop stall, any cause (target: commits < 1 ms)",
              median_of(runs, [](auto& r) { return r.worst_stall_ms; }));
  for (auto& r : runs) std::printf(" %.2f", r.worst_stall_ms);
  std::printf(")\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"engine_bench: the engine core against spawn and commit floors measured in the same run"};
  int steps = 1000, repeat = 3, jobs = static_cast<int>(uv_available_parallelism());
  int spawn_samples = 1000, commit_samples = 500;
  std::string shape = "both";
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp && *tmp ? tmp : "/tmp";
  app.add_option("--steps", steps, "Steps in the generated workflow")->check(CLI::PositiveNumber);
  app.add_option("--repeat", repeat, "Runs per shape; the median is reported")->check(CLI::PositiveNumber);
  app.add_option("--shape", shape, "chain: each step needs the previous; wide: independent steps")
      ->check(CLI::IsMember({"chain", "wide", "both"}));
  app.add_option("--jobs", jobs, "Steps at once in the wide shape (default: CPUs)")->check(CLI::PositiveNumber);
  app.add_option("--spawn-samples", spawn_samples, "Samples per spawn floor")->check(CLI::PositiveNumber);
  app.add_option("--commit-samples", commit_samples, "Samples for the commit floor")->check(CLI::PositiveNumber);
  app.add_option("--dir", base, "Where temporary stores go (default: $TMPDIR or /tmp)")->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);

  install_io_shim();
  TempDir floor_dir(base);
  std::printf("engine_bench: steps=%d repeat=%d jobs(wide)=%d cpus=%u dir=%s (%s) sqlite=%s libuv=%s loadavg %s\n",
              steps, repeat, jobs, uv_available_parallelism(), base.c_str(), filesystem_kind(base).c_str(),
              sqlite3_libversion(), uv_version_string(), loadavg().c_str());

  Floors fl;
  auto spec = step_spec(floor_dir.path.string());
  // Each floor also reports this process's own CPU per sample: the parent's
  // share of a spawn (page-table copy for fork, almost nothing for vfork).
  auto self_cpu_per = [](auto&& measure, int n) {
    double before = cpu_now().self_ms;
    measure();
    return (cpu_now().self_ms - before) / n;
  };
  double bash_cpu = self_cpu_per([&] { fl.bash = stats_of(spawn_floor(spec.argv, spec.env, spawn_samples)); }, spawn_samples);
  double true_cpu =
      self_cpu_per([&] { fl.bin_true = stats_of(spawn_floor({"/bin/true"}, spec.env, spawn_samples)); }, spawn_samples);
  fl.bash_parallel_ms = spawn_floor_parallel(spec.argv, spec.env, spawn_samples, jobs);
  double sandbox_cpu = self_cpu_per([&] { fl.sandbox = stats_of(sandbox_floor(spec, spawn_samples)); }, spawn_samples);
  fl.commit = commit_floor(floor_dir.path.string(), commit_samples);

  std::printf("\nfloors (this process, this run; cpu = this process's CPU per sample):\n");
  std::printf("  %-62s p50 %.3f ms  mean %.3f ms  cpu %.3f ms  (n=%zu, %zu env vars)\n",
              "posix_spawn+waitpid: bash --noprofile --norc -eo pipefail -c true", fl.bash.p50, fl.bash.mean, bash_cpu,
              fl.bash.n, spec.env.size());
  std::printf("  %-62s p50 %.3f ms  mean %.3f ms  cpu %.3f ms\n", "posix_spawn+waitpid: /bin/true", fl.bin_true.p50,
              fl.bin_true.mean, true_cpu);
  std::printf("  %-62s %.3f ms per process\n",
              ("posix_spawn+waitpid: the bash command, " + std::to_string(jobs) + " in flight").c_str(),
              fl.bash_parallel_ms);
  std::printf("  %-62s p50 %.3f ms  mean %.3f ms  cpu %.3f ms  (posix_spawn, pipe, pidfd, setsid; RSS %.0f MiB)\n",
              "local sandbox alone: the step's spec, spawn to on_exit", fl.sandbox.p50, fl.sandbox.mean, sandbox_cpu,
              rss_mib());
  std::printf("  %-62s p50 %.3f ms  mean %.3f ms  (n=%zu, %.2f syncs, %.0f bytes per commit)\n",
              "SQLite WAL commit, ~200-byte row, synchronous=FULL", fl.commit.ms.p50, fl.commit.ms.mean, fl.commit.ms.n,
              static_cast<double>(fl.commit.io.syncs) / static_cast<double>(fl.commit.ms.n),
              static_cast<double>(fl.commit.io.write_bytes) / static_cast<double>(fl.commit.ms.n));

  for (const char* s : {"chain", "wide"}) {
    if (shape != "both" && shape != s) continue;
    bool chain = std::string(s) == "chain";
    std::string text = workflow_text(steps, chain);
    auto t = Clock::now();
    auto loaded = workflows::load_workflow_text(text, std::string("bench-") + s + ".toml");
    double load_ms = ms_between(t, Clock::now());
    if (!loaded.ok()) {
      for (auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
      return 2;
    }
    int run_jobs = chain ? 1 : jobs;
    std::vector<RunFigures> runs;
    for (int r = 0; r < repeat; ++r) runs.push_back(run_once(*loaded.workflow, base, run_jobs));
    report_shape(s, *loaded.workflow, load_ms, runs, fl, run_jobs);
  }
  Stats late;
  double late_cpu = self_cpu_per([&] { late = stats_of(sandbox_floor(spec, spawn_samples)); }, spawn_samples);
  std::printf("\nlocal sandbox alone again, after the runs (RSS now %.0f MiB): p50 %.3f ms  mean %.3f ms  cpu %.3f ms\n",
              rss_mib(), late.p50, late.mean, late_cpu);
  return 0;
}
