// The store with its fsync off the loop (store_durable.cpp), on a real
// SQLite file and a real loop: what waits for durability is called after the
// fsync, in order; a killed process keeps what it committed; the log is
// still copied into the database.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <uv.h>

#include "engine/store.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"

using hearth::Status;
using hearth::engine::EventRecord;
using hearth::engine::RunRecord;
using hearth::engine::Store;
using hearth::testing::TempDir;

namespace {

RunRecord sample_run(const std::string& id) {
  return RunRecord{id, "wf", "wf.toml", "sha256:ab", "[[steps]]", {}, "/repo", hearth::RunStatus::running, 1, {}, "", "", 0};
}

void commit_run(Store& store, const std::string& id) {
  BOOST_REQUIRE(store.begin().ok());
  BOOST_REQUIRE(store.insert_run(sample_run(id)).ok());
  BOOST_REQUIRE(store.commit().ok());
}

std::unique_ptr<Store> open_attached(const TempDir& dir, uv_loop_t* loop) {
  auto store = Store::open(dir.str() + "/state.db");
  BOOST_REQUIRE_MESSAGE(store, (store ? "" : store.message()));
  auto attached = (*store)->attach(loop);
  BOOST_REQUIRE_MESSAGE(attached.ok(), (attached.ok() ? "" : attached.message()));
  return std::move(*store);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store_durable)

BOOST_AUTO_TEST_CASE(what_waits_for_durability_runs_after_the_fsync_in_the_order_registered) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  std::vector<std::string> called;
  // Nothing committed since attach: nothing to wait for.
  store->when_durable(&called, [&](const Status& s) { called.push_back(s.ok() ? "at once" : s.message()); });
  BOOST_TEST(called == std::vector<std::string>{"at once"});

  commit_run(*store, "r1");
  store->when_durable(&called, [&](const Status& s) { called.push_back(s.ok() ? "r1" : s.message()); });
  commit_run(*store, "r2");
  store->when_durable(&called, [&](const Status& s) { called.push_back(s.ok() ? "r2" : s.message()); });
  BOOST_TEST(called.size() == 1u, "a commit's waiter ran before any fsync");
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(called == (std::vector<std::string>{"at once", "r1", "r2"}));
  // r2 was committed while r1's fsync ran, or both before it: never more fsyncs than commits.
  BOOST_TEST(store->syncs() >= 1);
  BOOST_TEST(store->syncs() <= 2);
}

BOOST_AUTO_TEST_CASE(a_waiter_registered_after_a_pending_one_waits_its_turn) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  std::vector<int> order;
  commit_run(*store, "r1");
  store->when_durable(&order, [&](const Status&) {
    order.push_back(1);
    // A waiter that commits again: the next one waits for a later fsync.
    commit_run(*store, "r3");
    store->when_durable(&order, [&](const Status&) { order.push_back(3); });
  });
  // Registered with nothing new committed, but behind a pending waiter: never ahead of it.
  store->when_durable(&order, [&](const Status&) { order.push_back(2); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(order == (std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(a_forgotten_waiter_is_never_called) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  int gone = 0, kept = 0;
  commit_run(*store, "r1");
  store->when_durable(&gone, [&](const Status&) { ++gone; });
  store->when_durable(&kept, [&](const Status&) { ++kept; });
  store->forget(&gone);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(gone == 0);
  BOOST_TEST(kept == 1);
}

BOOST_AUTO_TEST_CASE(a_store_closed_while_its_fsync_runs_calls_nothing_and_keeps_the_commit) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  int called = 0;
  {
    auto store = open_attached(dir, &l.loop);
    commit_run(*store, "r1");
    store->when_durable(&called, [&](const Status&) { ++called; });
  }  // the fsync is in flight on the threadpool; its callback finds the store gone
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(called == 0);
  auto again = Store::open(dir.str() + "/state.db");
  BOOST_REQUIRE(again);
  BOOST_TEST((*again)->run_exists("r1").value());
}

BOOST_AUTO_TEST_CASE(a_detached_store_fsyncs_each_commit_again_and_a_waiter_may_detach_it) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  int called = 0;
  commit_run(*store, "r1");
  // The engine going away from inside a callback: the store detaches mid-dispatch.
  store->when_durable(&called, [&](const Status&) {
    ++called;
    store->detach();
  });
  store->when_durable(&called, [&](const Status&) { ++called; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(called == 1, "a waiter dropped by detach() was called");
  // Detached: a commit is durable when it returns, so nothing waits.
  commit_run(*store, "r2");
  store->when_durable(&called, [&](const Status&) { ++called; });
  BOOST_TEST(called == 2);
  BOOST_TEST(store->syncs() == 0);
}

// The engine killed the instant a commit returned, before any fsync: the
// commit is in the kernel's cache and the next open finds it.
BOOST_AUTO_TEST_CASE(a_process_killed_right_after_a_commit_keeps_it) {
  TempDir dir;
  pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto store = Store::open(dir.str() + "/state.db");
    if (!store || !(*store)->attach(&loop).ok()) _exit(2);
    if (!(*store)->begin().ok() || !(*store)->insert_run(sample_run("killed")).ok() || !(*store)->commit().ok()) _exit(3);
    raise(SIGKILL);
    _exit(4);
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child failed before the kill: " << status);
  auto store = Store::open(dir.str() + "/state.db");
  BOOST_REQUIRE(store);
  BOOST_TEST((*store)->run_exists("killed").value());
}

// SQLite's own checkpoint would stall a commit; the store's runs on the
// threadpool instead, and must still happen: the log's pages reach the
// database file and the log starts over instead of growing without end.
BOOST_AUTO_TEST_CASE(the_log_is_still_copied_into_the_database) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  std::string path = dir.str() + "/state.db";
  auto db_before = std::filesystem::file_size(path);
  commit_run(*store, "big");
  const std::string blob(3000, 'x');
  int64_t seq = 0;
  for (int batch = 0; batch < 40; ++batch) {
    BOOST_REQUIRE(store->begin().ok());
    for (int i = 0; i < 100; ++i)
      BOOST_REQUIRE(store->insert_event(EventRecord{"big", ++seq, 1, "step.output", "s", {{"text", blob}}}).ok());
    BOOST_REQUIRE(store->commit().ok());
    uv_run(&l.loop, UV_RUN_NOWAIT);  // the loop turns between commits, as in a run
  }
  uv_run(&l.loop, UV_RUN_DEFAULT);
  // The writes stopped: a checkpoint catches up with the log, and the next
  // commit starts it over.
  commit_run(*store, "after");
  uv_run(&l.loop, UV_RUN_DEFAULT);
  commit_run(*store, "after-that");
  uv_run(&l.loop, UV_RUN_DEFAULT);
  auto db_after = std::filesystem::file_size(path);
  auto log = std::filesystem::file_size(path + "-wal");
  BOOST_TEST(db_after > db_before + 6u * 1024 * 1024, "the database file did not receive the log's pages");
  BOOST_TEST(log < 12u * 1024 * 1024, "the log grew to hold everything: " << log);
}

BOOST_AUTO_TEST_SUITE_END()
