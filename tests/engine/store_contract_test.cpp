// The store's contract (engine/store.h), run against both backends: a real
// SQLite file and a real PostgreSQL server (tests/support/pg_server.h), each
// case on a fresh database of each. What one backend does the other must.
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "ci/delivery_queue.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/cli/repo.h"
#include "tests/engine/fixture.h"
#include "tests/support/files.h"
#include "tests/support/pg_server.h"

using hearth::engine::AttemptRecord;
using hearth::engine::CallRecord;
using hearth::engine::EventRecord;
using hearth::engine::RunRecord;
using hearth::engine::StepRecord;
using hearth::engine::Store;
using hearth::testing::pg_server;
using hearth::testing::TempDir;

namespace {

// A fresh database of one backend: where it is, and this machine's
// directory for the engine's files.
struct Place {
  std::string backend;
  std::string location;
  TempDir local;
};

std::unique_ptr<Store> open_store(const Place& p) {
  auto store = Store::open(p.location, nullptr, p.local.str());
  BOOST_REQUIRE_MESSAGE(store.ok(), p.backend << ": " << (store.ok() ? "" : store.message()));
  return std::move(*store);
}

// Runs `body` on a fresh SQLite file, then on a fresh PostgreSQL database.
template <class Body>
void on_both(Body&& body) {
  {
    Place p{"sqlite", "", {}};
    p.location = p.local.str() + "/state.db";
    BOOST_TEST_CONTEXT("sqlite") body(p);
  }
  {
    Place p{"postgres", pg_server().fresh_database(), {}};
    BOOST_TEST_CONTEXT("postgres") body(p);
  }
}

RunRecord sample_run(const std::string& id, const std::string& workflow, int64_t created_at) {
  RunRecord r;
  r.id = id;
  r.workflow = workflow;
  r.workflow_path = "/repo/.hearth/workflows/" + workflow + ".toml";
  r.workflow_hash = "abc123";
  r.workflow_text = "[[steps]]\nid = \"a\"\nrun = \"echo é\"\n";
  r.payload = {{"ref", "main"}, {"n", 3}};
  r.repo = "/repo";
  r.created_at = created_at;
  r.lease_owner = "42@host";
  r.lease_heartbeat = created_at + 1;
  return r;
}

void require_ok(const hearth::Status& s) { BOOST_REQUIRE_MESSAGE(s.ok(), s.message()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(store_contract)

BOOST_AUTO_TEST_CASE(runs_steps_and_attempts_read_back_as_written_after_reopening) {
  on_both([](const Place& p) {
    // Program output is bytes: a NUL and a byte that is not UTF-8 survive.
    const std::string tail("out\0put \xff end", 14);
    {
      auto store = open_store(p);
      require_ok(store->begin());
      require_ok(store->insert_run(sample_run("r1", "build", 1000)));
      StepRecord a;
      a.id = "a";
      a.position = 0;
      require_ok(store->insert_step("r1", a));
      AttemptRecord started;
      started.step_id = "a";
      started.number = 1;
      started.started_at = 1100;
      require_ok(store->insert_attempt("r1", started));
      require_ok(store->commit());
      AttemptRecord done{"a", 1, 1100, 1200, 0, 0, "exited", tail, 14};
      require_ok(store->finish_attempt("r1", done));
      a.status = hearth::StepStatus::succeeded;
      a.attempts = 1;
      a.exit_code = 0;
      a.outputs = {{"version", "1.2.0"}};
      a.result = {{"ok", true}};
      a.retry_at = 5000;
      a.reason = "said \xff\xfe then stopped";  // text that is not UTF-8 is still stored
      require_ok(store->update_step("r1", a));
      require_ok(store->update_run("r1", hearth::RunStatus::succeeded, 1300, ""));
    }
    auto store = open_store(p);
    auto run = store->load_run("r1");
    BOOST_REQUIRE(run.ok());
    BOOST_TEST(run->status == hearth::RunStatus::succeeded);
    BOOST_TEST(run->payload == (nlohmann::json{{"ref", "main"}, {"n", 3}}));
    BOOST_TEST(run->workflow_text == sample_run("r1", "build", 0).workflow_text);
    BOOST_TEST(*run->finished_at == 1300);
    BOOST_TEST(run->lease_owner == "42@host");
    auto steps = store->load_steps("r1");
    BOOST_REQUIRE(steps.ok());
    BOOST_REQUIRE(steps->size() == 1u);
    const StepRecord& s = steps->front();
    BOOST_TEST(s.status == hearth::StepStatus::succeeded);
    BOOST_TEST(s.outputs["version"] == "1.2.0");
    BOOST_TEST(s.result == (nlohmann::json{{"ok", true}}));
    BOOST_TEST(*s.retry_at == 5000);
    BOOST_TEST(s.reason.rfind("said ", 0) == 0u);
    BOOST_TEST(s.reason.find(" then stopped") != std::string::npos);
    BOOST_REQUIRE(s.attempt_list.size() == 1u);
    BOOST_TEST(s.attempt_list[0].output_tail == tail);
    BOOST_TEST(s.attempt_list[0].reason == "exited");
    BOOST_TEST(store->load_run("nope").message().find("no run with id 'nope'") != std::string::npos);
  });
}

BOOST_AUTO_TEST_CASE(a_resume_reads_each_steps_last_attempt) {
  on_both([](const Place& p) {
    {
      auto store = open_store(p);
      require_ok(store->insert_run(sample_run("r1", "build", 1000)));
      StepRecord a;
      a.id = "a";
      require_ok(store->insert_step("r1", a));
      require_ok(store->insert_attempt("r1", AttemptRecord{"a", 1, 1100, {}, {}, 0, "", "", 0}));
      require_ok(store->finish_attempt("r1", AttemptRecord{"a", 1, 1100, 1150, 1, 0, "exited", "no\n", 3}));
      require_ok(store->insert_attempt("r1", AttemptRecord{"a", 2, 1200, {}, {}, 0, "", "", 0}));
      a.status = hearth::StepStatus::running;
      a.attempts = 2;
      a.failures = 1;
      require_ok(store->update_step("r1", a));
    }
    auto store = open_store(p);
    auto steps = store->load_steps_to_resume("r1");
    BOOST_REQUIRE(steps.ok());
    BOOST_REQUIRE(steps->size() == 1u);
    BOOST_TEST(steps->at(0).status == hearth::StepStatus::running);
    BOOST_REQUIRE(!steps->at(0).attempt_list.empty());
    const AttemptRecord& last = steps->at(0).attempt_list.back();
    BOOST_TEST(last.number == 2);
    BOOST_TEST(last.started_at == 1200);
    BOOST_TEST(!last.finished_at.has_value());
    auto all = store->load_steps("r1");
    BOOST_REQUIRE(all.ok());
    BOOST_REQUIRE(all->at(0).attempt_list.size() == 2u);
    BOOST_TEST(all->at(0).attempt_list[0].output_tail == "no\n");
  });
}

BOOST_AUTO_TEST_CASE(events_come_back_in_sequence_after_a_given_one) {
  on_both([](const Place& p) {
    auto store = open_store(p);
    require_ok(store->begin());
    require_ok(store->insert_run(sample_run("r1", "build", 1000)));
    for (int64_t seq : {3, 1, 2}) require_ok(store->insert_event({"r1", seq, 1000 + seq, "step.started", "a", {{"n", seq}}}));
    require_ok(store->commit());
    BOOST_TEST(*store->last_event_seq("r1") == 3);
    BOOST_TEST(*store->last_event_seq("other") == 0);
    auto after = store->load_events("r1", 1);
    BOOST_REQUIRE(after.ok());
    BOOST_REQUIRE(after->size() == 2u);
    BOOST_TEST((*after)[0].seq == 2);
    BOOST_TEST((*after)[1].data["n"] == 3);
  });
}

BOOST_AUTO_TEST_CASE(a_transaction_not_committed_leaves_nothing) {
  on_both([](const Place& p) {
    {
      auto store = open_store(p);
      require_ok(store->begin());
      require_ok(store->insert_run(sample_run("gone", "build", 1000)));
      store->rollback();
      require_ok(store->begin());
      require_ok(store->insert_run(sample_run("closed", "build", 1000)));
    }  // closed with the transaction open
    auto store = open_store(p);
    BOOST_TEST(!*store->run_exists("gone"));
    BOOST_TEST(!*store->run_exists("closed"));
  });
}

BOOST_AUTO_TEST_CASE(calls_started_and_never_finished_are_settled_as_unknown_once) {
  on_both([](const Place& p) {
    auto store = open_store(p);
    require_ok(store->insert_run(sample_run("r1", "build", 1000)));
    CallRecord first;
    first.sequence = 1;
    first.command = "git";
    first.argv = {"git", "push", "--tags"};
    first.cwd = ".";
    first.started_at = 1100;
    first.allowed = true;
    first.rule = "push";
    CallRecord second = first;
    second.sequence = 2;
    second.started_at = 1200;
    require_ok(store->insert_call("r1", "a", 1, first));
    require_ok(store->insert_call("r1", "a", 1, second));
    first.finished_at = 1150;
    first.outcome = "exited";
    first.exit_code = 0;
    first.output_tail = std::string("ok\0\xfe", 4);
    require_ok(store->finish_call("r1", "a", 1, first));
    auto settled = store->settle_unfinished_calls("r1", "a", 1, 9000);
    BOOST_REQUIRE(settled.ok());
    BOOST_REQUIRE(settled->size() == 1u);
    BOOST_TEST((*settled)[0].sequence == 2);
    BOOST_TEST((*settled)[0].outcome == "unknown");
    BOOST_TEST(store->settle_unfinished_calls("r1", "a", 1, 9001)->empty());
    auto calls = store->load_calls("r1");
    BOOST_REQUIRE(calls.ok());
    BOOST_REQUIRE(calls->size() == 2u);
    BOOST_TEST((*calls)[0].argv == first.argv);
    BOOST_TEST((*calls)[0].output_tail == first.output_tail);
    BOOST_TEST(*(*calls)[0].exit_code == 0);
    BOOST_TEST((*calls)[1].outcome == "unknown");
    BOOST_TEST(*(*calls)[1].finished_at == 9000);
  });
}

BOOST_AUTO_TEST_CASE(checkpoints_append_messages_and_load_whole) {
  on_both([](const Place& p) {
    auto store = open_store(p);
    require_ok(store->insert_run(sample_run("r1", "build", 1000)));
    StepRecord a;
    a.id = "a";
    require_ok(store->insert_step("r1", a));
    nlohmann::json state = {{"model", "m"}, {"messages", {{{"role", "user"}}, {{"role", "assistant"}}}}};
    require_ok(store->save_checkpoint("r1", "a", 1, 1, state));
    require_ok(store->append_checkpoint("r1", "a", 1, 2, {{"model", "m"}}, {{{"role", "user"}, {"n", 3}}}, 2));
    BOOST_TEST(*store->checkpoint_messages("r1", "a", 1) == 3u);
    auto loaded = store->load_checkpoint("r1", "a", 1);
    BOOST_REQUIRE(loaded.ok());
    BOOST_REQUIRE(loaded->has_value());
    BOOST_TEST((**loaded)["messages"].size() == 3u);
    BOOST_TEST((**loaded)["messages"][2]["n"] == 3);
    BOOST_TEST((**loaded)["model"] == "m");
    BOOST_TEST(!store->load_checkpoint("r1", "a", 2)->has_value());
    auto all = store->load_checkpoints("r1");
    BOOST_REQUIRE(all.ok());
    BOOST_REQUIRE(all->size() == 1u);
    BOOST_TEST((*all)[0].turns == 2);
  });
}

BOOST_AUTO_TEST_CASE(list_runs_is_newest_first_filtered_and_limited) {
  on_both([](const Place& p) {
    auto store = open_store(p);
    require_ok(store->begin());
    require_ok(store->insert_run(sample_run("old", "build", 1000)));
    require_ok(store->insert_run(sample_run("tie-1", "deploy", 2000)));
    require_ok(store->insert_run(sample_run("tie-2", "build", 2000)));
    require_ok(store->commit());
    auto all = store->list_runs(10, "");
    BOOST_REQUIRE(all.ok());
    BOOST_REQUIRE(all->size() == 3u);
    BOOST_TEST((*all)[0].id == "tie-2");  // same instant: the later recorded first
    BOOST_TEST((*all)[2].id == "old");
    auto builds = store->list_runs(10, "build");
    BOOST_REQUIRE(builds->size() == 2u);
    BOOST_TEST(store->list_runs(1, "")->size() == 1u);
    BOOST_TEST(*store->interrupted_runs() == (std::vector<std::string>{"old", "tie-1", "tie-2"}));
  });
}

BOOST_AUTO_TEST_CASE(a_failed_write_is_sticky_until_reopened) {
  on_both([](const Place& p) {
    {
      auto store = open_store(p);
      require_ok(store->insert_run(sample_run("r1", "build", 1000)));
      auto dup = store->insert_run(sample_run("r1", "build", 1000));
      BOOST_REQUIRE(!dup.ok());
      BOOST_TEST(dup.message().find("cannot record the run") != std::string::npos, dup.message());
      auto later = store->insert_run(sample_run("r2", "build", 1000));
      BOOST_TEST(later.message() == dup.message());
      BOOST_TEST(store->begin().message() == dup.message());
      BOOST_TEST(store->health().message() == dup.message());
    }
    auto store = open_store(p);
    require_ok(store->insert_run(sample_run("r2", "build", 1000)));
    BOOST_TEST(*store->run_exists("r1"));
  });
}

BOOST_AUTO_TEST_CASE(a_newer_schema_is_refused_naming_both_versions) {
  on_both([](const Place& p) {
    { open_store(p); }
    if (p.backend == "sqlite") {
      sqlite3* db = nullptr;
      BOOST_REQUIRE(sqlite3_open(p.location.c_str(), &db) == SQLITE_OK);
      BOOST_REQUIRE(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
      sqlite3_close(db);
    } else {
      pg_server().execute(p.location, "UPDATE schema_version SET version = 99");
    }
    auto store = Store::open(p.location, nullptr, p.local.str());
    BOOST_REQUIRE(!store.ok());
    BOOST_TEST(store.message().find("schema version 99, newer than this hearth understands (") != std::string::npos,
               store.message());
  });
}

BOOST_AUTO_TEST_CASE(the_delivery_queue_enqueues_claims_and_completes) {
  using hearth::ci::DeliveryQueue;
  on_both([](const Place& p) {
    auto store = open_store(p);
    auto queue = DeliveryQueue::open(*store);
    BOOST_REQUIRE_MESSAGE(queue.ok(), (queue.ok() ? "" : queue.message()));
    hearth::ci::DeliveryRecord d{"d1", "push", "", "{\"ref\":\"main\"}", "digest1", 1000, "accepted",
                                 {"run-1"}, {"ci.toml"}, "", 0};
    require_ok((*queue)->begin());
    require_ok((*queue)->add(d));
    int durable = 0;
    (*queue)->commit([&](const hearth::Status& s) { durable += s.ok(); });
    BOOST_TEST(durable == 1);
    std::optional<std::string> payload;
    (*queue)->claim("d1", [&](auto r) { payload = r.ok() ? r->value_or("none") : r.message(); });
    BOOST_TEST(*payload == "{\"ref\":\"main\"}");
    (*queue)->claim("missing", [&](auto r) { payload = r.ok() ? r->value_or("none") : r.message(); });
    BOOST_TEST(*payload == "none");
    std::optional<DeliveryQueue::Known> known;
    (*queue)->look_up("other-id", "digest1", [&](auto r) { known = *r; });
    BOOST_TEST(*known->same_body == "d1");
    auto left = (*queue)->leftovers();
    BOOST_REQUIRE(left.ok());
    BOOST_REQUIRE(left->resume.size() == 1u);
    BOOST_TEST(left->resume[0].unended_starts == 1);
    require_ok((*queue)->set_state("d1", "done", ""));
    BOOST_TEST((*queue)->leftovers()->size() == 0u);
    auto found = (*queue)->find("d1");
    BOOST_TEST((*found)->state == "done");
    BOOST_TEST((*found)->unended_starts == 0);
  });
}

BOOST_AUTO_TEST_CASE(stores_opened_at_once_on_a_fresh_database_migrate_it_once) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  std::vector<std::string> errors(4);
  std::vector<std::thread> openers;
  for (auto& e : errors)
    openers.emplace_back([&] {
      auto s = Store::open(p.location, nullptr, p.local.str());
      if (s.ok()) e = "";
      else e = s.message();
    });
  for (auto& t : openers) t.join();
  for (auto& e : errors) BOOST_TEST(e == "");
  auto store = open_store(p);
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
}

BOOST_AUTO_TEST_CASE(the_password_in_a_url_is_never_shown) {
  auto& server = pg_server();
  const std::string secret = "s3cret-Pw9";
  std::string url = "postgresql://" + server.user() + ":" + secret + "@/" +
                    server.fresh_database().substr(server.fresh_database().find(":///") + 4);
  TempDir local;
  // A database that is not there: the error names the place, not the password.
  auto missing = Store::open("postgresql://" + server.user() + ":" + secret + "@/nodb?host=" + server.socket_dir(),
                             nullptr, local.str());
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.message().find("nodb") != std::string::npos, missing.message());
  BOOST_TEST(missing.message().find(secret) == std::string::npos, missing.message());
  auto in_query = Store::open(server.url("nodb") + "&password=" + secret, nullptr, local.str());
  BOOST_REQUIRE(!in_query.ok());
  BOOST_TEST(in_query.message().find(secret) == std::string::npos, in_query.message());
  // Connected (the test server trusts its socket): path() and errors redact it.
  auto store = Store::open(url, nullptr, local.str());
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  BOOST_TEST((*store)->path().find(secret) == std::string::npos, (*store)->path());
  BOOST_TEST((*store)->path().find(":***@") != std::string::npos, (*store)->path());
  BOOST_TEST((*store)->load_run("nope").message().find(secret) == std::string::npos);
}

// Ends every session on the place's database, as a database restart does.
void end_sessions(const Place& p) {
  std::string db = p.location.substr(p.location.find(":///") + 4);
  db = db.substr(0, db.find('?'));
  pg_server().execute(pg_server().url("postgres"),
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "'");
}

// The connection goes away in the middle of a transaction: the store
// reconnects, learns the transaction was not saved (its commit mark is not
// there), makes it again and commits it: saved once.
BOOST_AUTO_TEST_CASE(a_connection_lost_in_a_transaction_is_made_again_and_saved_once) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  auto store = open_store(p);
  require_ok(store->begin());
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
  end_sessions(p);
  require_ok(store->insert_step("r1", StepRecord{"a", 0}));  // sent on the new connection, after r1 again
  require_ok(store->commit());
  BOOST_TEST(store->reconnects() == 1);
  BOOST_TEST(store->health().ok());
  auto again = open_store(p);
  BOOST_TEST(again->list_runs(10)->size() == 1u);
  BOOST_TEST(again->load_steps("r1")->size() == 1u);
  // Lost at COMMIT itself: the same.
  require_ok(store->begin());
  require_ok(store->insert_run(sample_run("r2", "build", 1001)));
  end_sessions(p);
  require_ok(store->commit());
  BOOST_TEST(again->list_runs(10)->size() == 2u);
}

// A relay between the store and the database, on a Unix socket of its own,
// that can lose one exchange as a network may: the next request from the
// store reaches the server but its answer never comes back
// (lose_next_answer), or the request itself is lost (lose_next_request);
// either way both connections are then closed. Later connections are
// relayed whole.
class Relay {
 public:
  explicit Relay(const std::string& server_dir) : server_(server_dir + "/.s.PGSQL.5432") {
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un at = address(dir_.str() + "/.s.PGSQL.5432");
    if (bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(listener_, 16) != 0)
      throw std::runtime_error("the relay cannot listen");
    thread_ = std::thread([this] { serve(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    close(listener_);
  }
  /// `url` (the test server's) through this relay instead.
  std::string route(std::string url, const std::string& server_dir) const {
    url.replace(url.find(server_dir), server_dir.size(), dir_.str());
    return url;
  }
  void lose_next_answer() { mode_ = kAnswer; }
  void lose_next_request() { mode_ = kRequest; }
  int lost() const { return lost_; }

 private:
  enum Mode { kNone, kAnswer, kRequest };
  static sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    return a;
  }
  void serve() {
    std::vector<std::pair<int, int>> pairs;  // store side, server side
    std::vector<bool> answer_dropped;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& [a, b] : pairs) fds.push_back({a, POLLIN, 0}), fds.push_back({b, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int a = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un to = address(server_);
        if (a >= 0 && connect(b, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
          pairs.emplace_back(a, b);
          answer_dropped.push_back(false);
        } else {
          close(a), close(b);
        }
        continue;  // the poll set changed
      }
      for (size_t i = 0; i < pairs.size(); ++i) {
        auto [a, b] = pairs[i];
        bool done = false;
        char buf[65536];
        if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP)) {
          ssize_t n = read(a, buf, sizeof buf);
          Mode m = mode_.exchange(kNone);
          if (n <= 0 || m == kRequest) done = true, lost_ += m == kRequest;
          else if (write(b, buf, static_cast<size_t>(n)) != n) done = true;
          else if (m == kAnswer) answer_dropped[i] = true;
        }
        if (!done && (fds[2 + 2 * i].revents & (POLLIN | POLLHUP))) {
          ssize_t n = read(b, buf, sizeof buf);
          if (n <= 0 || answer_dropped[i]) done = true, lost_ += answer_dropped[i] ? 1 : 0;
          else if (write(a, buf, static_cast<size_t>(n)) != n) done = true;
        }
        if (done) {
          close(a), close(b);
          pairs.erase(pairs.begin() + static_cast<long>(i));
          answer_dropped.erase(answer_dropped.begin() + static_cast<long>(i));
          break;  // the poll set changed
        }
      }
    }
    for (auto& [a, b] : pairs) close(a), close(b);
  }

  std::string server_;
  TempDir dir_;
  int listener_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{kNone};
  std::atomic<int> lost_{0};
};

// A step's checkpoint: its row and an event, in one transaction.
hearth::Status checkpoint(Store& store, int64_t seq) {
  StepRecord a{"a", 0};
  a.attempts = static_cast<int>(seq);
  if (auto s = store.begin(); !s.ok()) return s;
  if (auto s = store.update_step("r1", a); !s.ok()) return s;
  if (auto s = store.insert_event(EventRecord{"r1", seq, 1000 + seq, "step.finished", "a", {}}); !s.ok()) return s;
  return store.commit();
}

// A store of `p` through `relay`, holding run r1 with step a checkpointed
// once: every statement of a checkpoint is prepared, so the next request a
// checkpoint sends is its commit's.
std::unique_ptr<Store> open_relayed(const Place& p, const Relay& relay) {
  auto opened = Store::open(relay.route(p.location, pg_server().socket_dir()), nullptr, p.local.str());
  BOOST_REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? "" : opened.message()));
  Store& store = **opened;
  require_ok(store.insert_run(sample_run("r1", "build", 1000)));
  require_ok(store.insert_step("r1", StepRecord{"a", 0}));
  require_ok(checkpoint(store, 1));
  return std::move(*opened);
}

// The server saves a commit but its answer is lost: on a new connection the
// store finds its commit mark there, so it neither fails nor saves it twice
// (the event's key would refuse a second copy).
BOOST_AUTO_TEST_CASE(a_commit_saved_whose_answer_is_lost_is_found_saved_not_made_again) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  Relay relay(pg_server().socket_dir());
  auto opened = open_relayed(p, relay);
  Store& store = *opened;  // every statement now prepared: the next request is the commit's
  relay.lose_next_answer();
  require_ok(checkpoint(store, 2));
  BOOST_TEST(relay.lost() == 1);
  BOOST_TEST(store.reconnects() == 1);
  require_ok(checkpoint(store, 3));
  auto again = open_store(p);
  auto events = again->load_events("r1", 0);
  BOOST_REQUIRE(events.ok());
  BOOST_TEST(events->size() == 3u);
  BOOST_TEST((*again->load_steps("r1"))[0].attempts == 3);
  // The request itself lost: not saved, so made again, once.
  relay.lose_next_request();
  require_ok(checkpoint(store, 4));
  BOOST_TEST(relay.lost() == 2);
  BOOST_TEST(store.reconnects() == 2);
  BOOST_TEST(again->load_events("r1", 0)->size() == 4u);
}

// A transaction far larger than the socket's buffers both ways (on
// PostgreSQL all of it goes in one pipeline, whose answers pile up while it
// is still being sent): saved whole.
BOOST_AUTO_TEST_CASE(a_transaction_of_twenty_thousand_writes_is_saved_whole) {
  on_both([](Place& p) {
    auto store = open_store(p);
    require_ok(store->begin());
    require_ok(store->insert_run(sample_run("r1", "build", 1000)));
    const std::string data(200, 'x');
    for (int64_t seq = 1; seq <= 20000; ++seq)
      require_ok(store->insert_event(EventRecord{"r1", seq, seq, "step.output", "a", {{"text", data}}}));
    require_ok(store->commit());
    auto again = open_store(p);
    auto events = again->load_events("r1", 19990);
    BOOST_REQUIRE(events.ok());
    BOOST_TEST(events->size() == 10u);
    BOOST_TEST(*again->last_event_seq("r1") == 20000);
  });
}

// A loop of the test's own for an attached store. close() detaches the
// store (when it is still there) and checks that nothing of it is left on
// the loop.
struct TestLoop {
  uv_loop_t uv;
  TestLoop() { uv_loop_init(&uv); }
  void run() { uv_run(&uv, UV_RUN_DEFAULT); }
  void close(Store* store) {
    if (store) store->detach();
    BOOST_TEST(uv_loop_close(&uv) == 0);
  }
};

// A store of `p` holding run r1, leased to it ("1@a id=slow"), with step a.
std::unique_ptr<Store> open_leasing(const Place& p) {
  auto store = open_store(p);
  RunRecord run = sample_run("r1", "build", 1000);
  run.lease_owner = "1@a id=slow";
  require_ok(store->begin());
  require_ok(store->insert_run(run));
  require_ok(store->insert_step("r1", StepRecord{"a", 0}));
  require_ok(store->commit());
  return store;
}

// A waiter may close the store (its owner is done): the waiters after it
// are dropped, and nothing of the store is left on the loop (on SQLite the
// batch's after-callback has run by then: the waiter is called from it).
BOOST_AUTO_TEST_CASE(a_waiter_that_closes_an_attached_store_ends_its_commits_cleanly) {
  on_both([](Place& p) {
  auto store = open_store(p);
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
  require_ok(store->insert_step("r1", StepRecord{"a", 0}));
  TestLoop loop;
  require_ok(store->attach(&loop.uv));
  require_ok(checkpoint(*store, 1));
  std::vector<std::string> calls;
  store->when_durable(&calls, [&](const hearth::Status& s) {
    calls.push_back(s.ok() ? "first" : s.message());
    store.reset();
  });
  store->when_durable(&calls, [&](const hearth::Status&) { calls.push_back("second"); });
  loop.run();
  BOOST_TEST(calls == std::vector<std::string>{"first"});
  BOOST_TEST(!store);
  BOOST_TEST(open_store(p)->load_events("r1", 0)->size() == 1u);
  loop.close(nullptr);
  });
}

// The same attached to a loop: libpq takes answers in while it sends a
// pipeline larger than the socket's buffers, and the commit's poll still
// learns of the last one; SQLite's twenty thousand staged writes run on the
// threadpool. Saved whole, and called back.
BOOST_AUTO_TEST_CASE(an_attached_store_commits_twenty_thousand_writes_and_calls_back) {
  on_both([](Place& p) {
  auto store = open_store(p);
  TestLoop loop;
  require_ok(store->attach(&loop.uv));
  require_ok(store->begin());
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
  const std::string data(200, 'x');
  for (int64_t seq = 1; seq <= 20000; ++seq)
    require_ok(store->insert_event(EventRecord{"r1", seq, seq, "step.output", "a", {{"text", data}}}));
  require_ok(store->commit());
  int calls = 0;
  store->when_durable(&calls, [&](const hearth::Status& s) { calls += s.ok() ? 1 : 100; });
  // Should the answer never be read, the loop is stopped after 20 s.
  uv_timer_t limit;
  uv_timer_init(&loop.uv, &limit);
  uv_timer_start(&limit, [](uv_timer_t* t) noexcept { uv_stop(t->loop); }, 20000, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&limit));
  loop.run();
  BOOST_TEST(calls == 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&limit), nullptr);
  loop.run();
  BOOST_TEST(*open_store(p)->last_event_seq("r1") == 20000);
  loop.close(store.get());
  });
}

// A worker that stalled past its lease, whose run another worker took over,
// cannot save what it did in that run afterwards: its commit is fenced off,
// nothing of it is saved, and its store fails, naming the run. Writes
// before the takeover stand.
BOOST_AUTO_TEST_CASE(a_commit_for_a_run_taken_over_meanwhile_is_fenced_off) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  auto slow = open_leasing(p);
  require_ok(checkpoint(*slow, 1));
  // The heartbeat goes stale; another engine takes the run over.
  pg_server().execute(p.location, "UPDATE runs SET lease_heartbeat = 0 WHERE id = 'r1'");
  auto other = open_store(p);
  auto taken = other->take_lease("r1", "2@b id=other", 0, 1000);
  BOOST_REQUIRE(taken.ok());
  BOOST_REQUIRE(taken->empty());  // taken
  auto fenced = checkpoint(*slow, 2);
  BOOST_REQUIRE(!fenced.ok());
  BOOST_TEST(fenced.message().find("run r1 is no longer leased to this engine") != std::string::npos,
             fenced.message());
  BOOST_TEST(slow->insert_run(sample_run("r2", "build", 1)).message() == fenced.message());  // sticky
  BOOST_TEST(other->load_events("r1", 0)->size() == 1u);
  BOOST_TEST((*other->load_steps("r1"))[0].attempts == 1);
  BOOST_TEST(other->load_run("r1")->lease_owner == "2@b id=other");
  // The new owner writes on.
  require_ok(checkpoint(*other, 2));
  BOOST_TEST(other->load_events("r1", 0)->size() == 2u);
}

// Attached to a loop, a commit that writes is sent and left to its answer:
// commit() returns while the server still works on it (here: waits for a
// lock another session holds), the loop goes on meanwhile, and
// when_durable() calls back once the server has saved it.
BOOST_AUTO_TEST_CASE(an_attached_store_commits_while_the_loop_goes_on) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  auto store = open_store(p);
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
  require_ok(store->insert_step("r1", StepRecord{"a", 0}));
  require_ok(checkpoint(*store, 1));  // its statements prepared
  auto blocker = open_store(p);
  require_ok(blocker->begin());
  require_ok(blocker->tables().query("LOCK TABLE events IN EXCLUSIVE MODE", {}, "cannot lock").status());
  // Should commit() wait for the server after all, the lock goes in 5 s and
  // the figures below tell.
  std::atomic<bool> released{false}, lock_gone{false};
  std::thread fallback([&] {
    for (int i = 0; i < 500 && !released; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!lock_gone.exchange(true)) blocker->rollback();
  });
  TestLoop loop;
  require_ok(store->attach(&loop.uv));
  auto before = std::chrono::steady_clock::now();
  require_ok(checkpoint(*store, 2));
  auto returned_after = std::chrono::steady_clock::now() - before;
  int calls = 0;
  hearth::Status got{hearth::Error{"not called"}};
  store->when_durable(&calls, [&](const hearth::Status& s) {
    ++calls;
    got = s;
  });
  BOOST_TEST(calls == 0);
  struct Tick {
    uv_timer_t timer;
    int* calls;
    Store* blocker;
    std::atomic<bool>* lock_gone;
    bool fired = false;
    int calls_then = -1;
  } tick{{}, &calls, blocker.get(), &lock_gone};
  uv_timer_init(&loop.uv, &tick.timer);
  tick.timer.data = &tick;
  uv_timer_start(&tick.timer, [](uv_timer_t* t) noexcept {
    auto* k = static_cast<Tick*>(t->data);
    k->fired = true;
    k->calls_then = *k->calls;
    if (!k->lock_gone->exchange(true)) k->blocker->rollback();  // the lock goes: the commit can be saved
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }, 100, 0);
  loop.run();
  released = true;
  fallback.join();
  BOOST_TEST(std::chrono::duration<double>(returned_after).count() < 1.0);
  BOOST_TEST(tick.fired);
  BOOST_TEST(tick.calls_then == 0);  // the loop ran while the server waited
  BOOST_TEST(calls == 1);
  BOOST_TEST(got.ok(), got.message());
  BOOST_TEST(open_store(p)->load_events("r1", 0)->size() == 2u);
  loop.close(store.get());
}

// A commit that the server refuses once sent (fenced off: another engine
// took the run over) fails its waiter with the cause, and the store
// refuses every later write with it; what was saved before stands.
BOOST_AUTO_TEST_CASE(an_attached_store_s_failed_commit_reaches_its_waiters_and_sticks) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  auto slow = open_leasing(p);
  TestLoop loop;
  require_ok(slow->attach(&loop.uv));
  require_ok(checkpoint(*slow, 1));
  std::vector<std::string> results;
  slow->when_durable(&results, [&](const hearth::Status& s) { results.push_back(s.ok() ? "ok" : s.message()); });
  loop.run();
  pg_server().execute(p.location, "UPDATE runs SET lease_heartbeat = 0 WHERE id = 'r1'");
  BOOST_REQUIRE(open_store(p)->take_lease("r1", "2@b id=other", 0, 1000)->empty());
  require_ok(checkpoint(*slow, 2));  // handed over: the fence is the server's answer
  slow->when_durable(&results, [&](const hearth::Status& s) { results.push_back(s.ok() ? "ok" : s.message()); });
  loop.run();
  BOOST_REQUIRE(results.size() == 2u);
  BOOST_TEST(results[0] == "ok");
  BOOST_TEST(results[1].find("run r1 is no longer leased to this engine") != std::string::npos, results[1]);
  BOOST_TEST(slow->insert_run(sample_run("r2", "build", 1)).message() == results[1]);
  BOOST_TEST(slow->health().message() == results[1]);
  BOOST_TEST(open_store(p)->load_events("r1", 0)->size() == 1u);
  loop.close(slow.get());
}

// The answer to an attached commit is lost: its recovery, on libuv's
// thread pool, reconnects and finds it saved, as the synchronous path does.
BOOST_AUTO_TEST_CASE(an_attached_store_s_commit_whose_answer_is_lost_is_found_saved) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  Relay relay(pg_server().socket_dir());
  auto opened = open_relayed(p, relay);
  Store& store = *opened;
  TestLoop loop;
  require_ok(store.attach(&loop.uv));
  relay.lose_next_answer();
  require_ok(checkpoint(store, 2));
  int ok = 0;
  store.when_durable(&ok, [&](const hearth::Status& s) { ok += s.ok() ? 1 : 100; });
  loop.run();
  BOOST_TEST(ok == 1);
  BOOST_TEST(relay.lost() == 1);
  BOOST_TEST(store.reconnects() == 1);
  BOOST_TEST(open_store(p)->load_events("r1", 0)->size() == 2u);
  loop.close(&store);
}

// Sent again, a transaction must do what it did; when another session
// changed its rows meanwhile, nothing of it is saved and the store fails.
BOOST_AUTO_TEST_CASE(a_transaction_that_no_longer_does_the_same_when_sent_again_is_not_saved) {
  Place p{"postgres", pg_server().fresh_database(), {}};
  auto store = open_store(p);
  require_ok(store->begin());
  require_ok(store->insert_run(sample_run("r1", "build", 1000)));
  require_ok(store->commit());
  require_ok(store->begin());
  require_ok(store->update_run("r1", hearth::RunStatus::failed, 2000, "boom"));
  BOOST_TEST(store->load_run("r1")->status == hearth::RunStatus::failed);  // a read sends the write held back
  end_sessions(p);
  pg_server().execute(p.location, "DELETE FROM runs WHERE id='r1'");
  auto committed = store->commit();
  BOOST_REQUIRE(!committed.ok());
  BOOST_TEST(committed.message().find("no longer does the same") != std::string::npos, committed.message());
  BOOST_TEST(store->insert_run(sample_run("r2", "build", 1000)).message() == committed.message());  // sticky
  auto again = open_store(p);
  BOOST_TEST(!*again->run_exists("r1"));
  BOOST_TEST(!*again->run_exists("r2"));
}

// Two local steps; b runs `b_command`.
std::string two_steps(const std::string& b_command) {
  return "[sandbox]\nkind = \"local\"\n[[steps]]\nid = \"a\"\nrun = \"echo a >> log\"\n"
         "[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"" + b_command + "\"\n";
}

BOOST_AUTO_TEST_CASE(a_run_checkpointed_in_postgres_resumes_from_a_fresh_open) {
  hearth::testing::TempRepo repo{two_steps("exit 7")};
  repo.use_store(pg_server().fresh_database());
  auto first = repo.run();
  BOOST_TEST(first.outcome.status == hearth::RunStatus::failed);
  repo.rewrite(two_steps("echo b >> log"));  // the fix
  hearth::testing::ResumeOptions with_fix;
  with_fix.current = repo.load();
  auto second = repo.resume(first.outcome.run_id, with_fix);  // a store opened afresh
  BOOST_TEST(second.outcome.status == hearth::RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\n");  // a ran once
  BOOST_TEST(!repo.exists(".hearth/state.db"));  // the state went to PostgreSQL
}

BOOST_AUTO_TEST_CASE(hearth_run_and_runs_share_a_postgres_store_given_by_flag_or_variable) {
  hearth::testing::cli::Repo repo;
  repo.workflow("hello", "[sandbox]\nkind = \"local\"\n[[steps]]\nid = \"a\"\nrun = \"echo hi\"\n");
  const std::string secret = "pw-7f3e";
  std::string db = pg_server().fresh_database();
  // The test server trusts its socket: the password is there to be hidden.
  std::string url = "postgresql://" + pg_server().user() + ":" + secret + "@" + db.substr(db.find(":///") + 3);
  auto ran = repo.hearth({"run", "hello", "--store", url});
  BOOST_TEST(ran.exit_code == 0, ran.err);
  BOOST_TEST(!std::filesystem::exists(repo.default_state()));  // nothing went to SQLite
  BOOST_TEST((ran.out + ran.err).find(secret) == std::string::npos, ran.err);
  auto listed = repo.hearth({"runs", "--json"}, {{"HEARTH_STORE", url}});
  BOOST_TEST(listed.exit_code == 0, listed.err);
  auto runs = nlohmann::json::parse(listed.out, nullptr, false);
  BOOST_REQUIRE(runs.is_array());
  BOOST_REQUIRE(runs.size() == 1u);
  BOOST_TEST(runs[0]["workflow"] == "hello");
  BOOST_TEST(runs[0]["status"] == "succeeded");
  // Not a PostgreSQL URL: refused, without echoing what was given.
  auto wrong = repo.hearth({"runs", "--store", "mysql://u:" + secret + "@db/x"});
  BOOST_TEST(wrong.exit_code != 0);
  BOOST_TEST(wrong.err.find("postgres://") != std::string::npos, wrong.err);
  BOOST_TEST(wrong.err.find(secret) == std::string::npos, wrong.err);
}

BOOST_AUTO_TEST_SUITE_END()
