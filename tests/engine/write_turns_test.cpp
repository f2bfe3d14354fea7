// This process's writers of one state database take turns at its write lock
// (engine/write_turns.h), on real SQLite files: a writer that asked first
// writes first, and no way out of a transaction keeps the turn.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <uv.h>

#include "engine/store.h"
#include "engine/write_turns.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"

using hearth::engine::RunRecord;
using hearth::engine::Store;
using hearth::engine::WriteTurns;
using hearth::testing::TempDir;
using namespace std::chrono_literals;

namespace {

RunRecord run_named(const std::string& id) {
  return RunRecord{id, "wf", "wf.toml", "sha256:ab", "[[steps]]", {}, "/repo", hearth::RunStatus::running, 1, {}, "", "", 0};
}

std::unique_ptr<Store> open_store(const std::string& path) {
  auto store = Store::open(path);
  BOOST_REQUIRE_MESSAGE(store, (store ? "" : store.message()));
  return std::move(*store);
}

// On another thread: no test assertion here (Boost.Test's are not
// thread-safe); the caller checks what it returns.
hearth::Status writes(Store& other, const std::string& id) {
  if (auto s = other.begin(); !s.ok()) return s;
  if (auto s = other.insert_run(run_named(id)); !s.ok()) return s;
  return other.commit();
}

// A write of its own on another connection: it fails (after 5 s) if a turn
// was never given back.
void another_connection_writes(const std::string& path, const std::string& id) {
  auto other = open_store(path);
  auto began = other->begin();
  BOOST_REQUIRE_MESSAGE(began.ok(), (began.ok() ? "" : began.message()));
  BOOST_TEST(other->insert_run(run_named(id)).ok());
  BOOST_TEST(other->commit().ok());
}

void wait_for_waiters(WriteTurns& turns, size_t n) {
  for (auto until = std::chrono::steady_clock::now() + 10s; turns.waiting() < n;) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until, "nobody came to wait for a turn");
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(write_turns)

// The run store committing back to back must not starve the intake's writer:
// SQLite alone would let the writer that just let go take the lock again
// while the other sleeps in its busy handler.
BOOST_AUTO_TEST_CASE(a_writer_waiting_for_the_lock_writes_before_one_that_asks_again) {
  TempDir dir;
  std::string path = dir.str() + "/state.db";
  auto first = open_store(path);
  auto second = open_store(path);
  auto turns = WriteTurns::of(path);
  BOOST_REQUIRE(turns);
  BOOST_REQUIRE(first->begin().ok());
  BOOST_REQUIRE(first->insert_run(run_named("first-1")).ok());
  hearth::Status waited;
  std::thread waiter([&] { waited = writes(*second, "waiter"); });
  wait_for_waiters(*turns, 1);
  BOOST_REQUIRE(first->commit().ok());
  BOOST_REQUIRE(first->begin().ok());  // at once: the waiter is still asleep
  BOOST_REQUIRE(first->insert_run(run_named("first-2")).ok());
  BOOST_REQUIRE(first->commit().ok());
  waiter.join();
  BOOST_REQUIRE_MESSAGE(waited.ok(), (waited.ok() ? "" : waited.message()));
  auto runs = first->list_runs(10);
  BOOST_REQUIRE(runs);
  std::vector<std::string> order;
  for (auto it = runs->rbegin(); it != runs->rend(); ++it) order.push_back(it->id);
  BOOST_TEST((order == std::vector<std::string>{"first-1", "waiter", "first-2"}),
             "the writer that asked again went first: " << order.at(0) << ", " << order.at(1) << ", " << order.at(2));
}

BOOST_AUTO_TEST_CASE(every_way_out_of_a_transaction_gives_the_turn_back) {
  TempDir dir;
  std::string path = dir.str() + "/state.db";
  {
    auto store = open_store(path);
    BOOST_REQUIRE(store->begin().ok());
    BOOST_REQUIRE(store->insert_run(run_named("rolled-back")).ok());
    store->rollback();
  }
  another_connection_writes(path, "after-rollback");
  {
    auto store = open_store(path);
    BOOST_REQUIRE(store->begin().ok());
    BOOST_REQUIRE(store->insert_run(run_named("after-rollback")).ok() == false);  // the id is taken: the write fails
    store->rollback();
    another_connection_writes(path, "after-a-failed-write");
    BOOST_TEST(!store->begin().ok(), "a failed store takes no more writes");
  }
  {
    auto store = open_store(path);
    BOOST_REQUIRE(store->begin().ok());
    BOOST_REQUIRE(store->insert_run(run_named("abandoned")).ok());
  }  // closed inside its transaction
  another_connection_writes(path, "after-a-close");
  auto store = open_store(path);
  BOOST_TEST(!store->run_exists("abandoned").value());
  BOOST_TEST(store->run_exists("after-a-close").value());
}

// Attached, a transaction's COMMIT runs on libuv's threadpool, and one made
// live by a read took its turn on the loop: the pool gives it back, after a
// failure too.
BOOST_AUTO_TEST_CASE(the_threadpool_gives_back_the_turns_of_the_commits_it_runs) {
  TempDir dir;
  std::string path = dir.str() + "/state.db";
  hearth::testing::LoopFixture l;
  auto store = open_store(path);
  BOOST_REQUIRE(store->attach(&l.loop).ok());
  BOOST_REQUIRE(store->begin().ok());
  BOOST_REQUIRE(store->insert_run(run_named("live")).ok());
  BOOST_REQUIRE(store->run_exists("live").value());  // the read makes the transaction live
  BOOST_REQUIRE(store->commit().ok());
  bool durable = false;
  store->when_durable(&durable, [&](const hearth::Status& s) { durable = s.ok(); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(durable);
  another_connection_writes(path, "after-a-live-commit");
  BOOST_REQUIRE(store->begin().ok());
  BOOST_REQUIRE(store->insert_run(run_named("twice")).ok());
  BOOST_REQUIRE(store->insert_run(run_named("twice")).ok());  // staged: it fails on the pool
  BOOST_REQUIRE(store->commit().ok());
  std::string got;
  store->when_durable(&got, [&](const hearth::Status& s) { got = s.ok() ? "ok" : s.message(); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_REQUIRE(got != "ok");
  another_connection_writes(path, "after-a-failed-batch");
}

BOOST_AUTO_TEST_CASE(turns_are_taken_in_order_and_a_waiter_that_gives_up_leaves_the_queue) {
  TempDir dir;
  std::string path = dir.str() + "/state.db";
  open_store(path);
  auto turns = WriteTurns::of(path);
  BOOST_REQUIRE(turns);
  BOOST_TEST(WriteTurns::of(dir.str() + "/./state.db") == turns, "two paths of one file must share its turns");
  BOOST_REQUIRE(turns->take(std::chrono::steady_clock::now() + 1s));
  BOOST_TEST(!turns->take(std::chrono::steady_clock::now() + 20ms), "a turn was had while another held it");
  BOOST_TEST(turns->waiting() == 0u, "a waiter that gave up is still queued");
  std::vector<int> order;
  std::mutex order_mu;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      bool had = turns->take(std::chrono::steady_clock::now() + 10s);
      {
        std::lock_guard lock(order_mu);
        order.push_back(had ? i : -1);
      }
      if (had) turns->give();
    });
    wait_for_waiters(*turns, static_cast<size_t>(i) + 1);
  }
  turns->give();
  for (auto& t : waiters) t.join();
  BOOST_TEST((order == std::vector<int>{0, 1, 2, 3}));
}

BOOST_AUTO_TEST_SUITE_END()
