// The intake's writer of `hearth serve` on a real SQLite file: groups are
// reported once, in order, after their rows are committed where the run
// store's own connection reads them; a failed write is sticky.
#include "ci/intake_writer.h"

#include <uv.h>

#include <boost/test/unit_test.hpp>

#include "engine/store.h"
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
    auto w = IntakeWriter::start(&loop, path, [this](uint64_t ticket, const hearth::Status& stored) {
      auto found = queue->find(first_id[ticket]);
      reports.push_back({ticket, stored, found.ok() && found->has_value()});
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

BOOST_FIXTURE_TEST_CASE(a_failed_write_fails_every_later_group_and_stores_nothing_of_them, Intake) {
  submit(1, {delivery("a")});
  run_until([&] { return reports.size() == 1; });
  BOOST_REQUIRE(reports[0].stored.ok());
  // The same id again cannot be inserted: that write fails, and so does the
  // next group, however valid.
  submit(2, {delivery("b"), delivery("a")});
  run_until([&] { return reports.size() == 2; });
  submit(3, {delivery("c")});
  run_until([&] { return reports.size() == 3; });
  BOOST_TEST(!reports[1].stored.ok());
  BOOST_TEST(!reports[2].stored.ok());
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
