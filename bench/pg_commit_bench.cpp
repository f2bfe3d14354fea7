// A step's checkpoint through the PostgreSQL store (one transaction: the lease's fence,
// the step's row, an event) against a bare one-row INSERT committed through libpq on the
// same server, interleaved; first with the store unattached (commit() waits for the
// server, as a CLI query does), then attached to a loop, as the engine has it (commit()
// hands the transaction to libuv's threadpool): how long the loop thread is held, and how
// long until when_durable() calls back. The server is the tests' own
// (tests/support/pg_server.h): a Unix socket, PostgreSQL's default durability. Prints
// microseconds per commit, median and p99.
//   pg_commit_bench [commits]
#include <libpq-fe.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "engine/store.h"
#include "tests/support/files.h"
#include "tests/support/pg_server.h"

using Clock = std::chrono::steady_clock;

namespace {

void print(const char* what, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  std::printf("%-32s median %7.1f us   p99 %7.1f us   (%zu commits)\n", what, us[us.size() / 2],
              us[us.size() * 99 / 100], us.size());
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  auto& server = hearth::testing::pg_server();
  hearth::testing::TempDir local;
  auto store = hearth::engine::Store::open(server.fresh_database(), nullptr, local.str());
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.message().c_str()), 1;
  auto& s = **store;
  hearth::engine::RunRecord run;
  run.id = "r";
  run.workflow = "bench";
  run.lease_owner = "bench";  // leased, as the engine's runs are: each checkpoint passes the fence
  if (!s.insert_run(run).ok()) return 1;
  hearth::engine::StepRecord step;
  step.id = "a";
  if (!s.insert_step("r", step).ok()) return 1;
  PGconn* conn = PQconnectdb(server.fresh_database().c_str());
  PQclear(PQexec(conn, "CREATE TABLE one (n BIGINT)"));
  // Interleaved, one of each in turn: both see the same moments of the
  // machine (another process's I/O, the server's checkpoints).
  std::vector<double> checkpoint, staging, committing, bare;
  for (int i = 1; i <= n; ++i) {
    auto t0 = Clock::now();
    step.attempts = i;
    (void)s.begin();
    (void)s.update_step("r", step);
    (void)s.insert_event({"r", i, i, "step.finished", "a", {{"exit_code", 0}}});
    auto t1 = Clock::now();
    if (!s.commit().ok()) return std::fprintf(stderr, "%s\n", s.health().message().c_str()), 1;
    checkpoint.push_back(since(t0));
    staging.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    committing.push_back(since(t1));
    auto t2 = Clock::now();
    PQclear(PQexec(conn, "INSERT INTO one VALUES (1)"));
    bare.push_back(since(t2));
  }
  print("step checkpoint (store)", checkpoint);
  print("  of which the 2 writes (held)", staging);
  print("  of which commit()", committing);
  print("bare one-row commit (libpq)", bare);
  std::printf("ratio of medians: %.2f\n\n", checkpoint[checkpoint.size() / 2] / bare[bare.size() / 2]);

  // Attached: the loop thread's part, and the time until the commit is durable.
  uv_loop_t loop;
  uv_loop_init(&loop);
  if (!s.attach(&loop).ok()) return 1;
  std::vector<double> held, durable, bare2;
  for (int i = n + 1; i <= 2 * n; ++i) {
    auto t0 = Clock::now();
    step.attempts = i;
    (void)s.begin();
    (void)s.update_step("r", step);
    (void)s.insert_event({"r", i, i, "step.finished", "a", {{"exit_code", 0}}});
    if (!s.commit().ok()) return std::fprintf(stderr, "%s\n", s.health().message().c_str()), 1;
    held.push_back(since(t0));
    bool failed = false;
    s.when_durable(&held, [&](const hearth::Status& st) {
      durable.push_back(since(t0));
      failed = !st.ok();
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    if (failed) return std::fprintf(stderr, "%s\n", s.health().message().c_str()), 1;
    auto t2 = Clock::now();
    PQclear(PQexec(conn, "INSERT INTO one VALUES (1)"));
    bare2.push_back(since(t2));
  }
  s.detach();
  uv_loop_close(&loop);
  PQfinish(conn);
  print("attached: the loop thread held", held);
  print("attached: until durable", durable);
  print("bare one-row commit (libpq)", bare2);
  std::printf("ratio of medians, until durable: %.2f\n", durable[durable.size() / 2] / bare2[bare2.size() / 2]);
  return 0;
}
