// The webhook delivery queue of `hearth serve` on a real SQLite store: its
// own tables beside the engine's, the crash counter, and databases written
// while the engine's schema still held the queue (they keep their deliveries).
#include "ci/delivery_queue.h"

#include <sqlite3.h>
#include <uv.h>

#include <boost/test/unit_test.hpp>

#include "engine/store.h"
#include "tests/engine/schema9.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"

using hearth::ci::DeliveryQueue;
using hearth::ci::DeliveryRecord;
using hearth::engine::Store;
using hearth::testing::TempDir;

namespace {

void sql(const std::string& path, const std::string& text) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
  std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, why);
}

struct Opened {
  std::unique_ptr<Store> store;
  std::unique_ptr<DeliveryQueue> queue;
};

Opened open_queue(const std::string& path) {
  auto store = Store::open(path);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  auto queue = DeliveryQueue::open(**store);
  BOOST_REQUIRE_MESSAGE(queue.ok(), (queue.ok() ? "" : queue.message()));
  return {std::move(*store), std::move(*queue)};
}

// A store as the last release before the queue's own schema left it, at
// engine schema `version` (7: the deliveries table with its crash counter;
// 6: without), holding `rows`. The table had the same columns, in the same
// order, and the same indexes as the queue's version 1; no part_versions.
void write_engine_kept_queue(const std::string& path, int version, const std::string& rows) {
  { open_queue(path); }
  std::string text = std::string(hearth::testing::kToSchema9) +
                     "DROP TABLE part_versions; ALTER TABLE deliveries DROP COLUMN owner; "
                     "ALTER TABLE deliveries DROP COLUMN heartbeat;";
  if (version < 7) text += "ALTER TABLE deliveries DROP COLUMN unended_starts;";
  text += "PRAGMA user_version=" + std::to_string(version) + ";" + rows;
  sql(path, text);
}

DeliveryRecord sample_delivery() {
  DeliveryRecord d;
  d.id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
  d.event = "issues";
  d.action = "opened";
  d.payload = R"({"action":"opened"})";
  d.digest = "ab12";
  d.received_at = 5;
  d.state = "accepted";
  d.run_ids = {"r1", "r2"};
  d.workflows = {"a.toml", "b.toml"};
  return d;
}

// Commits what is staged and returns what the completion got (it must come).
hearth::Status commit(DeliveryQueue& q) {
  std::optional<hearth::Status> got;
  q.commit([&](const hearth::Status& s) {
    BOOST_TEST(!got.has_value(), "the completion came twice");
    got = s;
  });
  BOOST_REQUIRE(got.has_value());
  return *got;
}

std::optional<std::string> claim(DeliveryQueue& q, const std::string& id) {
  std::optional<hearth::Result<std::optional<std::string>>> got;
  q.claim(id, [&](hearth::Result<std::optional<std::string>> r) { got = std::move(r); });
  BOOST_REQUIRE(got.has_value());
  BOOST_REQUIRE_MESSAGE(got->ok(), (got->ok() ? "" : got->message()));
  return **got;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(delivery_queue)

BOOST_AUTO_TEST_CASE(a_queued_delivery_survives_reopening_and_its_id_is_taken_once) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  DeliveryRecord d = sample_delivery();
  {
    auto o = open_queue(path);
    BOOST_REQUIRE(o.queue->begin().ok());
    BOOST_REQUIRE(o.queue->add(d).ok());
    BOOST_REQUIRE(commit(*o.queue).ok());
  }
  auto o = open_queue(path);
  auto found = o.queue->find(d.id);
  BOOST_REQUIRE(found.ok());
  BOOST_REQUIRE(found->has_value());
  BOOST_TEST((**found).payload == d.payload);
  BOOST_TEST(((**found).run_ids == d.run_ids));
  BOOST_TEST(((**found).workflows == d.workflows));
  std::optional<DeliveryQueue::Known> known;
  o.queue->look_up("another id", "ab12", [&](hearth::Result<DeliveryQueue::Known> k) { known = std::move(*k); });
  BOOST_REQUIRE(known.has_value());
  BOOST_TEST(known->same_body.value_or("") == d.id);
  o.queue->look_up(d.id, "cd34", [&](hearth::Result<DeliveryQueue::Known> k) { known = std::move(*k); });
  BOOST_REQUIRE(known->delivery.has_value());
  BOOST_TEST(known->delivery->state == "accepted");
  auto left = o.queue->leftovers();
  BOOST_REQUIRE(left.ok());
  BOOST_REQUIRE(left->resume.size() == 1u);
  BOOST_REQUIRE(o.queue->begin().ok());
  BOOST_REQUIRE(o.queue->set_state(d.id, "done", "").ok());
  // The same delivery id twice is refused by the queue's table itself.
  BOOST_TEST(!o.queue->add(d).ok());
  o.queue->rollback();
}

BOOST_AUTO_TEST_CASE(a_version_2_store_gains_the_delivery_queue_and_keeps_its_runs) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE(store.ok());
    hearth::engine::RunRecord run;
    run.id = "old";
    run.workflow = "wf";
    run.created_at = 1000;
    BOOST_REQUIRE((*store)->insert_run(run).ok());
  }
  // A store from before the queue: engine schema 2, no deliveries table.
  sql(path, std::string(hearth::testing::kToSchema9) +
                "DROP TABLE part_versions; DROP TABLE command_calls; DROP TABLE agent_checkpoints; "
                "DROP TABLE agent_messages; ALTER TABLE steps DROP COLUMN result; PRAGMA user_version=2");
  auto o = open_queue(path);
  BOOST_TEST(o.store->load_run("old")->workflow == "wf");
  BOOST_REQUIRE(o.queue->begin().ok());
  BOOST_REQUIRE(o.queue->add(sample_delivery()).ok());
  BOOST_REQUIRE(commit(*o.queue).ok());
  BOOST_TEST(o.queue->leftovers()->resume.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_store_whose_engine_schema_held_the_queue_keeps_its_queued_deliveries) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  write_engine_kept_queue(path, 7,
                          "INSERT INTO deliveries (id, event, payload, digest, received_at, state, run_ids, workflows, "
                          "unended_starts) VALUES ('d1', 'push', '{\"after\":\"abc\"}', 'ab', 1, 'started', "
                          "'[\"r1\"]', '[\"a.toml\"]', 1), ('d0', 'push', '', 'cd', 0, 'done', '[]', '[]', 0)");
  {
    auto o = open_queue(path);
    auto left = o.queue->leftovers();
    BOOST_REQUIRE(left.ok());
    BOOST_REQUIRE(left->resume.size() == 1u);
    BOOST_TEST(left->resume[0].id == "d1");
    BOOST_TEST(left->resume[0].unended_starts == 1);
    BOOST_TEST((left->resume[0].run_ids == std::vector<std::string>{"r1"}));
    BOOST_TEST(left->quarantine.empty());
    // Processed once more and killed again: the second crash quarantines it.
    BOOST_TEST(claim(*o.queue, "d1").value_or("") == R"({"after":"abc"})");
  }
  auto o = open_queue(path);
  auto left = o.queue->leftovers();
  BOOST_REQUIRE(left.ok());
  BOOST_TEST(left->resume.empty());
  BOOST_REQUIRE(left->quarantine.size() == 1u);
  BOOST_TEST(left->quarantine[0].delivery.id == "d1");
  BOOST_TEST(left->quarantine[0].why.find("ended 2 times") != std::string::npos, left->quarantine[0].why);
  BOOST_TEST((*o.queue->find("d0"))->state == "done");
}

BOOST_AUTO_TEST_CASE(a_version_6_store_counts_unended_delivery_starts_and_failed_ones_leave_the_queue) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  // A version 6 store (no crash counter) holding a delivery being processed.
  write_engine_kept_queue(path, 6,
                          "INSERT INTO deliveries (id, event, digest, received_at, state, run_ids, workflows) "
                          "VALUES ('d1', 'push', 'ab', 1, 'started', '[\"r1\"]', '[\"a.toml\"]')");
  auto o = open_queue(path);
  auto& q = *o.queue;
  auto left = q.leftovers();
  BOOST_REQUIRE(left.ok());
  BOOST_REQUIRE(left->resume.size() == 1u);
  BOOST_TEST(left->resume[0].unended_starts == 0);
  // Each claim is committed on its own; a clean stop zeroes the count.
  claim(q, "d1");
  claim(q, "d1");
  BOOST_TEST(q.leftovers()->quarantine.size() == 1u);
  BOOST_TEST((*q.find("d1"))->unended_starts == 2);
  BOOST_REQUIRE(q.clear_starts("d1").ok());
  BOOST_TEST((*q.find("d1"))->unended_starts == 0);
  // Marked failed, it keeps its reason and leaves the queue for good.
  claim(q, "d1");
  BOOST_REQUIRE(q.set_state("d1", "failed", "crashed twice").ok());
  BOOST_TEST(q.leftovers()->size() == 0u);
  auto found = q.find("d1");
  BOOST_REQUIRE(found.ok());
  BOOST_REQUIRE(found->has_value());
  BOOST_TEST((*found)->state == "failed");
  BOOST_TEST((*found)->error == "crashed twice");
  BOOST_TEST((*found)->unended_starts == 0);
  BOOST_TEST(!claim(q, "nope").has_value());
}

BOOST_AUTO_TEST_CASE(a_queue_newer_than_this_hearth_is_refused) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  { open_queue(path); }
  sql(path, "UPDATE part_versions SET version=99 WHERE part='deliveries'");
  auto store = Store::open(path);
  BOOST_REQUIRE(store.ok());
  auto queue = DeliveryQueue::open(**store);
  BOOST_REQUIRE(!queue.ok());
  BOOST_TEST(queue.message().find("schema version 99") != std::string::npos, queue.message());
}

// On a loop, a commit's completion waits for the fsync that makes it
// durable: a 202 sent from it promises what survives a power loss.
BOOST_AUTO_TEST_CASE(a_commit_completes_once_it_is_durable) {
  TempDir dir;
  hearth::testing::LoopFixture fx;
  auto o = open_queue((dir.path / "state.db").string());
  BOOST_REQUIRE(o.store->attach(&fx.loop).ok());
  BOOST_REQUIRE(o.queue->begin().ok());
  BOOST_REQUIRE(o.queue->add(sample_delivery()).ok());
  int calls = 0;
  hearth::Status got;
  o.queue->commit([&](const hearth::Status& s) {
    ++calls;
    got = s;
  });
  BOOST_TEST(calls == 0);
  BOOST_TEST(o.store->syncs() == 0);
  fx.run_until([&] { return calls > 0; });
  BOOST_TEST(calls == 1);
  BOOST_TEST(got.ok());
  BOOST_TEST(o.store->syncs() >= 1);
  o.store->detach();
}

BOOST_AUTO_TEST_SUITE_END()
