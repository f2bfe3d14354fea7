// The store with its fsync off the loop (store_durable.cpp), on a real
// SQLite file and a real loop: what waits for durability is called after the
// fsync, in order; a killed process keeps what it committed; the log is
// still copied into the database.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
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

// The engine killed the instant a commit's waiter was called: the next open
// finds the commit. Killed the instant commit() returned (its writes maybe
// still on the threadpool), the file opens whole, with the commit or
// without it, and takes writes.
BOOST_AUTO_TEST_CASE(a_process_killed_after_a_commit_is_durable_keeps_it) {
  for (bool wait_for_durable : {true, false}) {
    TempDir dir;
    pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      uv_loop_t loop;
      uv_loop_init(&loop);
      auto store = Store::open(dir.str() + "/state.db");
      if (!store || !(*store)->attach(&loop).ok()) _exit(2);
      if (!(*store)->begin().ok() || !(*store)->insert_run(sample_run("killed")).ok() || !(*store)->commit().ok())
        _exit(3);
      if (wait_for_durable) {
        (*store)->when_durable(&loop, [](const Status& s) {
          if (s.ok()) raise(SIGKILL);
          _exit(5);
        });
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(4);  // never called back
      }
      raise(SIGKILL);
      _exit(4);
    }
    int status = 0;
    BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                          "the child failed before the kill: " << status);
    auto store = Store::open(dir.str() + "/state.db");
    BOOST_REQUIRE(store);
    auto found = (*store)->run_exists("killed");
    BOOST_REQUIRE(found);
    if (wait_for_durable) BOOST_TEST(*found, "a commit its waiter was told of is lost");
    BOOST_TEST((*store)->begin().ok());
    BOOST_TEST((*store)->insert_run(sample_run("after")).ok());
    BOOST_TEST((*store)->commit().ok());
  }
}

// SQLite's own checkpoint would stall a commit; the store's runs on the
// threadpool instead, and must still happen: the log's pages reach the
// database file and the log starts over instead of growing without end.
// (It keeps up to 64 MiB on disk when it starts over: a second round of the
// same writes reuses the first one's space.)
BOOST_AUTO_TEST_CASE(the_log_is_still_copied_into_the_database) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  std::string path = dir.str() + "/state.db";
  auto db_before = std::filesystem::file_size(path);
  const std::string blob(3000, 'x');
  int64_t seq = 0;
  auto round = [&](const std::string& run) {
    commit_run(*store, run);
    for (int batch = 0; batch < 40; ++batch) {
      BOOST_REQUIRE(store->begin().ok());
      for (int i = 0; i < 100; ++i)
        BOOST_REQUIRE(store->insert_event(EventRecord{run, ++seq, 1, "step.output", "s", {{"text", blob}}}).ok());
      BOOST_REQUIRE(store->commit().ok());
      uv_run(&l.loop, UV_RUN_NOWAIT);  // the loop turns between commits, as in a run
    }
    uv_run(&l.loop, UV_RUN_DEFAULT);
    // The writes stopped: a checkpoint catches up with the log, and the
    // next commit starts it over.
    commit_run(*store, run + "-after");
    uv_run(&l.loop, UV_RUN_DEFAULT);
    commit_run(*store, run + "-after-that");
    uv_run(&l.loop, UV_RUN_DEFAULT);
  };
  round("big");
  auto db_after = std::filesystem::file_size(path);
  auto log_first = std::filesystem::file_size(path + "-wal");
  BOOST_TEST(db_after > db_before + 6u * 1024 * 1024, "the database file did not receive the log's pages");
  round("bigger");
  auto log_second = std::filesystem::file_size(path + "-wal");
  BOOST_TEST(std::filesystem::file_size(path) > db_after + 6u * 1024 * 1024);
  BOOST_TEST(log_second < log_first + 2u * 1024 * 1024,
             "the log did not start over: " << log_first << " bytes, then " << log_second);
}

// Another connection holds SQLite's one write lock (as `hearth serve`'s
// intake writer does while it commits a group): the engine's transaction
// waits for it on the threadpool, and the loop goes on meanwhile.
BOOST_AUTO_TEST_CASE(the_loop_goes_on_while_another_connection_holds_the_write_lock) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  commit_run(*store, "before");
  bool first_durable = false;
  store->when_durable(&first_durable, [&](const Status&) { first_durable = true; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(first_durable);

  sqlite3* other = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir.str() + "/state.db").c_str(), &other) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  std::atomic<bool> held{true};
  std::thread holder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    held = false;
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  });

  std::vector<std::string> order;
  BOOST_TEST(store->begin().ok());
  BOOST_TEST(store->insert_run(sample_run("while-held")).ok());
  BOOST_TEST(store->commit().ok());
  order.push_back(held ? "committed while held" : "committed after the release");
  store->when_durable(&order, [&](const Status& s) {
    order.push_back(s.ok() ? (held ? "durable while held" : "durable after the release") : s.message());
  });
  uv_timer_t tick;
  uv_timer_init(&l.loop, &tick);
  tick.data = &order;
  uv_timer_start(&tick, [](uv_timer_t* t) noexcept {
    static_cast<std::vector<std::string>*>(t->data)->push_back("a timer while held");
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }, 50, 0);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  holder.join();
  sqlite3_close(other);
  BOOST_TEST(order == (std::vector<std::string>{"committed while held", "a timer while held",
                                                "durable after the release"}),
             "events: " << [&] {
               std::string all;
               for (auto& o : order) all += o + "; ";
               return all;
             }());
  BOOST_TEST(store->run_exists("while-held").value());
}

// A write that fails on the threadpool (here a run inserted twice) fails
// its transaction whole, reaches the waiters, and sticks; the transaction
// before it is kept.
BOOST_AUTO_TEST_CASE(a_write_that_fails_on_the_threadpool_fails_the_waiters_and_sticks) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  commit_run(*store, "kept");
  BOOST_TEST(store->begin().ok());
  BOOST_TEST(store->insert_run(sample_run("twice")).ok());
  BOOST_TEST(store->insert_run(sample_run("twice")).ok(), "staged: the failure is found when it runs");
  BOOST_TEST(store->commit().ok());
  std::string got = "not called";
  store->when_durable(&got, [&](const Status& s) { got = s.ok() ? "ok" : s.message(); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(got.find("cannot record the run") != std::string::npos, got);
  BOOST_TEST(!store->health().ok());
  BOOST_TEST(!store->begin().ok(), "a failed store takes no more writes");
  store.reset();
  auto reopened = Store::open(dir.str() + "/state.db");
  BOOST_REQUIRE(reopened);
  BOOST_TEST((*reopened)->run_exists("kept").value());
  BOOST_TEST(!(*reopened)->run_exists("twice").value(), "half of a failed transaction was kept");
}

// A read inside an open transaction sees that transaction's writes, and a
// read after a commit sees the commit, though both were staged for the pool.
BOOST_AUTO_TEST_CASE(reads_see_the_staged_writes_before_them) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  BOOST_TEST(store->begin().ok());
  BOOST_TEST(store->insert_run(sample_run("in-tx")).ok());
  BOOST_TEST(store->run_exists("in-tx").value(), "a read missed its own transaction's write");
  BOOST_TEST(store->update_run("in-tx", hearth::RunStatus::succeeded, 5, "").ok());
  BOOST_TEST(store->commit().ok());
  commit_run(*store, "after");
  BOOST_TEST(store->run_exists("after").value(), "a read missed a commit made before it");
  BOOST_TEST((store->load_run("in-tx").value().status == hearth::RunStatus::succeeded));
  store->begin();
  BOOST_TEST(store->insert_run(sample_run("rolled-back")).ok());
  store->rollback();
  BOOST_TEST(!store->run_exists("rolled-back").value());
  bool durable = false;
  std::string why;
  store->when_durable(&durable, [&](const Status& s) { durable = s.ok(); why = s.ok() ? "" : s.message(); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(durable, why);
}

// A waiter registered inside a transaction that a read made live, for a
// commit that a read ran on the loop (not yet fsynced), is called though
// that transaction is then rolled back and nothing else is committed.
BOOST_AUTO_TEST_CASE(a_waiter_registered_in_a_live_transaction_is_called) {
  TempDir dir;
  hearth::testing::LoopFixture l;
  auto store = open_attached(dir, &l.loop);
  commit_run(*store, "a");
  commit_run(*store, "b");                  // queued behind a's batch
  BOOST_TEST(store->run_exists("b").value());  // runs b here, on the loop
  uv_run(&l.loop, UV_RUN_DEFAULT);          // a's batch ends; nobody waits yet
  BOOST_TEST(store->begin().ok());
  BOOST_TEST(!store->run_exists("x").value());  // the transaction is live
  std::string got = "not called";
  store->when_durable(&got, [&](const Status& s) { got = s.ok() ? "ok" : s.message(); });
  store->rollback();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(got == "ok");
}

BOOST_AUTO_TEST_SUITE_END()
