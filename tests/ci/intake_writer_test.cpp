// The intake's writer of `hearth serve` on a real SQLite file: groups are
// reported once, in order, after their rows are committed where the run
// store's own connection reads them; a delivery whose id or body is queued
// already (in an earlier group, the same one, or committed by the run
// store's connection) is not inserted again; a failed write is sticky; a
// job runs between the groups around it.
#include "ci/intake_writer.h"

#include <uv.h>

#include <memory>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "ci/webhook.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"

using hearth::ci::DeliveryQueue;
using hearth::ci::DeliveryRecord;
using hearth::ci::IntakeWriter;
using hearth::engine::Store;
using hearth::testing::LoopFixture;
using hearth::testing::TempDir;

namespace {

DeliveryRecord delivery(const std::string& id) {
  DeliveryRecord d;
  d.id = id;
  d.event = "push";
  d.payload = R"({"after":")" + id + R"("})";
  d.digest = "digest-" + id;
  d.received_at = 7;
  d.state = "accepted";
  d.run_ids = {id + "-build"};
  d.workflows = {"build.toml"};
  return d;
}

struct Report {
  uint64_t ticket;
  hearth::Status stored;
  bool visible;  // the run store's connection saw the group's first row when it came
  std::vector<hearth::ci::Verdict> verdicts;
};

// The run store, its queue (which creates the tables), and a writer beside.
struct Intake : LoopFixture {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  std::unique_ptr<Store> store;
  std::unique_ptr<DeliveryQueue> queue;
  IntakeWriter* writer = nullptr;
  std::vector<Report> reports;
  std::map<uint64_t, std::string> first_id;  // ticket -> a delivery it holds

  Intake() {
    auto s = Store::open(path);
    BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.message()));
    store = std::move(*s);
    auto q = DeliveryQueue::open(*store);
    BOOST_REQUIRE_MESSAGE(q.ok(), (q.ok() ? "" : q.message()));
    queue = std::move(*q);
    auto w = IntakeWriter::start(&loop, path, [this](uint64_t ticket, const hearth::Status& stored,
                                                     std::vector<hearth::ci::Verdict>& verdicts) {
      auto found = queue->find(first_id[ticket]);
      reports.push_back({ticket, stored, found.ok() && found->has_value(), std::move(verdicts)});
    });
    BOOST_REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.message()));
    writer = *w;
  }
  ~Intake() {
    bool closed = false;
    writer->close([&] { closed = true; });
    run_until([&] { return closed; });
  }
  void submit(uint64_t ticket, std::vector<DeliveryRecord> records) {
    first_id[ticket] = records.front().id;
    writer->submit(ticket, std::move(records));
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(intake_writer)

BOOST_FIXTURE_TEST_CASE(each_group_is_reported_once_in_order_after_its_rows_are_committed, Intake) {
  submit(1, {delivery("a"), delivery("b")});
  submit(2, {delivery("c")});
  submit(3, {delivery("d"), delivery("e"), delivery("f")});
  run_until([&] { return reports.size() == 3; });
  BOOST_TEST(writer->in_flight() == 0u);
  for (size_t i = 0; i < reports.size(); ++i) {
    BOOST_TEST(reports[i].ticket == i + 1);
    BOOST_TEST(reports[i].stored.ok());
    BOOST_TEST(reports[i].visible, "group " << i + 1 << " was reported before the run store could read it");
  }
  BOOST_TEST(writer->commits() >= 1);
  BOOST_TEST(writer->commits() <= 3);
  auto f = queue->find("f");
  BOOST_REQUIRE(f.ok());
  BOOST_REQUIRE(f->has_value());
  BOOST_TEST((**f).payload == R"({"after":"f"})");
  BOOST_TEST((**f).state == "accepted");
}

// A job runs on the writer's thread after the groups submitted before it
// (it finds their rows on the writer's own connection) and before those
// after it; its answer reaches the loop between their reports.
BOOST_FIXTURE_TEST_CASE(a_job_runs_between_the_groups_around_it_and_answers_in_order, Intake) {
  size_t reported_before = 99;  // groups reported when the job's answer came
  auto seen = std::make_shared<std::pair<bool, bool>>();  // written on the writer's thread, read after its answer
  std::thread::id loop_thread = std::this_thread::get_id();
  bool answered_on_loop = false;
  submit(1, {delivery("a")});
  writer->call([&, seen](DeliveryQueue& q, Store&) -> std::function<void()> {
    auto a = q.find("a"), b = q.find("b");
    seen->first = a.ok() && a->has_value();
    seen->second = b.ok() && b->has_value();
    return [&] {
      reported_before = reports.size();
      answered_on_loop = std::this_thread::get_id() == loop_thread;
    };
  });
  submit(2, {delivery("b")});
  BOOST_TEST(writer->jobs_in_flight() == 1u);
  run_until([&] { return reports.size() == 2 && writer->jobs_in_flight() == 0; });
  BOOST_TEST(seen->first, "the job did not see the group submitted before it");
  BOOST_TEST(!seen->second, "the job saw the group submitted after it");
  BOOST_TEST(answered_on_loop);
  // The job's answer came after group 1's report and before group 2's.
  BOOST_REQUIRE_EQUAL(reports.size(), 2u);
  BOOST_TEST(reports[0].ticket == 1u);
  BOOST_TEST(reported_before == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_known_id_or_a_repeated_body_is_decided_not_inserted_again, Intake) {
  using Kind = hearth::ci::Verdict::Kind;
  DeliveryRecord copy = delivery("d");
  copy.id = "d-again";  // d's body (digest) under a fresh id
  DeliveryRecord other_body = delivery("a");
  other_body.payload = R"({"after":"changed"})";
  other_body.digest = "digest-changed";  // a's id with another body: still a's id
  submit(1, {delivery("a"), delivery("a"), delivery("d")});
  submit(2, {other_body, copy, delivery("e")});
  run_until([&] { return reports.size() == 2; });
  BOOST_REQUIRE(reports[0].stored.ok());
  BOOST_REQUIRE(reports[1].stored.ok());
  BOOST_REQUIRE(reports[0].verdicts.size() == 3u);
  BOOST_REQUIRE(reports[1].verdicts.size() == 3u);
  auto& first = reports[0].verdicts;
  auto& second = reports[1].verdicts;
  BOOST_TEST((first[0].kind == Kind::stored));
  BOOST_TEST((first[1].kind == Kind::known), "the same id twice in one group was inserted twice");
  BOOST_REQUIRE(first[1].known.has_value());
  BOOST_TEST(first[1].known->id == "a");
  BOOST_TEST(first[1].known->state == "accepted");
  BOOST_TEST(first[1].known->run_ids == std::vector<std::string>{"a-build"});
  BOOST_TEST((second[0].kind == Kind::known), "a known id with another body was taken for a new delivery");
  BOOST_TEST((second[1].kind == Kind::replay), "a body accepted before was accepted again under a new id");
  BOOST_TEST(second[1].replay_of == "d");
  BOOST_TEST((second[2].kind == Kind::stored));
  auto a = queue->find("a");
  BOOST_REQUIRE(a.ok());
  BOOST_REQUIRE(a->has_value());
  BOOST_TEST((**a).payload == R"({"after":"a"})", "the repeat overwrote the stored delivery");
  auto again = queue->find("d-again");
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->has_value(), "the replay was stored");
}

BOOST_FIXTURE_TEST_CASE(the_digest_is_computed_when_not_given_and_a_payload_without_runs_is_not_kept, Intake) {
  DeliveryRecord plain = delivery("p");
  plain.digest.clear();
  DeliveryRecord idle = delivery("q");
  idle.run_ids.clear();
  idle.workflows.clear();
  idle.state = "done";
  submit(1, {plain, idle});
  run_until([&] { return reports.size() == 1; });
  BOOST_REQUIRE(reports[0].stored.ok());
  auto p = queue->find("p");
  BOOST_REQUIRE(p.ok());
  BOOST_REQUIRE(p->has_value());
  BOOST_TEST((**p).digest == hearth::ci::sha256_hex(plain.payload));
  auto q = queue->find("q");
  BOOST_REQUIRE(q.ok());
  BOOST_REQUIRE(q->has_value());
  BOOST_TEST((**q).payload.empty(), "a payload nothing will read was stored");
}

BOOST_FIXTURE_TEST_CASE(a_failed_write_fails_every_later_group_and_stores_nothing_of_them, Intake) {
  submit(1, {delivery("a")});
  run_until([&] { return reports.size() == 1; });
  BOOST_REQUIRE(reports[0].stored.ok());
  // An insert the database refuses (as a full disk would): that write fails,
  // and so does the next group, however valid.
  BOOST_REQUIRE(store->tables()
                    .execute("CREATE TRIGGER refuse BEFORE INSERT ON deliveries WHEN NEW.id = 'boom' "
                             "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                             {}, "cannot add the trigger")
                    .ok());
  submit(2, {delivery("b"), delivery("boom")});
  run_until([&] { return reports.size() == 2; });
  submit(3, {delivery("c")});
  run_until([&] { return reports.size() == 3; });
  BOOST_TEST(!reports[1].stored.ok());
  BOOST_TEST(!reports[2].stored.ok());
  BOOST_TEST(reports[1].verdicts.empty());
  BOOST_TEST(reports[2].stored.message() == reports[1].stored.message());
  BOOST_TEST(reports[1].stored.message().find("cannot record the delivery") != std::string::npos,
             reports[1].stored.message());
  for (const char* id : {"b", "c"}) {
    auto found = queue->find(id);
    BOOST_REQUIRE(found.ok());
    BOOST_TEST(!found->has_value(), id << " was stored by a failed group");
  }
}

BOOST_AUTO_TEST_SUITE_END()
