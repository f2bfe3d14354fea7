// `hearth store check` and `hearth store migrate` end to end: real runs made
// by the real binary in a real SQLite file, moved to a real PostgreSQL
// server (tests/support/pg_server.h) and read, resumed and moved back there.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <boost/test/unit_test.hpp>

#include "ci/delivery_queue.h"
#include "engine/checkout_records.h"
#include "engine/compiled_workflows.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/cli/repo.h"
#include "tests/support/pg_server.h"

using namespace hearth::testing::cli;
using hearth::testing::pg_server;

namespace {

constexpr int kUpgrade = 3, kNewer = 4;

// Two steps that succeed, one that fails, and one whose second step waits on
// the fifo `gate` until the file `resumed` exists: the engine is killed there.
void add_workflows(const Repo& repo) {
  repo.workflow("hello", R"([sandbox]
kind = "local"
[[steps]]
id = "greet"
run = "echo hi; echo 'who=world' >> \"$HEARTH_OUTPUT\""
[[steps]]
id = "answer"
needs = ["greet"]
run = "echo answered ${{ steps.greet.outputs.who }}"
)");
  repo.workflow("broken", "[sandbox]\nkind = \"local\"\n[[steps]]\nid = \"fail\"\nrun = \"echo about to fail; exit 7\"\n");
  repo.workflow("gated", R"([sandbox]
kind = "local"
[[steps]]
id = "a"
run = "echo a >> log"
[[steps]]
id = "b"
needs = ["a"]
run = "if [ ! -e resumed ]; then echo b-waiting; read x < gate; fi; echo b >> log"
)");
}

// Lets whatever still reads the fifo `gate` go (a step the killed engine
// left behind); nothing to do when no one does.
void open_gate(const Repo& repo) {
  int fd = ::open((repo.root() / "gate").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

// Runs hello, broken and gated in `repo`'s SQLite store, killing the engine
// while gated's step b runs. Returns gated's run id.
std::string make_history(const Repo& repo) {
  add_workflows(repo);
  BOOST_REQUIRE(::mkfifo((repo.root() / "gate").c_str(), 0600) == 0);
  REQUIRE_EXIT(repo.hearth({"run", "hello"}), 0);
  REQUIRE_EXIT(repo.hearth({"run", "broken"}), 1);
  {
    HearthProcess engine({{"run", "gated"}, {}, repo.root()});
    auto seen = engine.wait_for_stderr(std::regex("(b-waiting)"), std::chrono::seconds(20));
    BOOST_REQUIRE_MESSAGE(seen, "step b never started:\n" << engine.err());
    engine.kill_and_reap();
  }
  open_gate(repo);
  json runs = repo.runs({"--workflow", "gated"});
  BOOST_REQUIRE(runs.size() == 1u);
  return runs[0]["id"].get<std::string>();
}

// The URL of `db` (as pg_server gives it) with a password in it, which the
// test server (trusting its socket) ignores: there to be hidden.
std::string with_password(const std::string& db, const std::string& password) {
  return "postgresql://" + pg_server().user() + ":" + password + "@" + db.substr(db.find(":///") + 3);
}

// A run as `hearth show --json` prints it, minus what says which store or
// engine holds it now.
json comparable(json run) {
  for (const char* volatile_field : {"interrupted", "lease_owner", "state", "store"}) run.erase(volatile_field);
  return run;
}

// What no hearth would write, written straight into a SQLite file.
void sqlite_exec(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, sql << ": " << why);
}

json check_json(const Repo& repo, const std::string& location, int expect_exit) {
  auto o = repo.hearth({"store", "check", location, "--json"});
  BOOST_REQUIRE_MESSAGE(o.exit_code == expect_exit, shown(o));
  return json::parse(o.out);
}

// Bytes as hex, so that a difference prints whatever they hold.
std::string hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {kDigits[c >> 4], kDigits[c & 15]};
  return out;
}

void require_ok(const hearth::Status& s) { BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? std::string() : s.message())); }

std::unique_ptr<hearth::engine::Store> open_store(const std::string& location, const TempDir& local) {
  auto store = hearth::engine::Store::open(location, nullptr, local.str());
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? std::string() : store.message()));
  return std::move(*store);
}

// A run written through the store as the engine writes one: a step with a
// finished attempt whose output is not text, two granted-command calls (one
// never finished), an agent checkpoint of three messages, events; two queued
// deliveries received at the same instant; a compiled workflow.
void write_everything(hearth::engine::Store& store) {
  using namespace hearth::engine;
  const std::string tail("out\0put \xff end", 14);
  RunRecord r{"r1", "build", "/repo/.hearth/workflows/build.toml", "abc", "[[steps]]\nid = \"a\"\n", {{"n", 3}},
              "/repo", hearth::RunStatus::running, 1000, std::nullopt, "", "42@host pidns=1 boot=x id=y", 1500};
  require_ok(store.begin());
  require_ok(store.insert_run(r));
  StepRecord a;
  a.id = "a";
  require_ok(store.insert_step("r1", a));
  require_ok(store.insert_attempt("r1", AttemptRecord{"a", 1, 1100, {}, {}, 0, "", "", 0}));
  require_ok(store.finish_attempt("r1", AttemptRecord{"a", 1, 1100, 1200, 3, 0, "exited", tail, 14}));
  require_ok(store.insert_attempt("r1", AttemptRecord{"a", 2, 1300, {}, {}, 0, "", "", 0}));
  a.status = hearth::StepStatus::running;
  a.attempts = 2;
  a.failures = 1;
  a.outputs = {{"version", "1.2.0"}};
  require_ok(store.update_step("r1", a));
  CallRecord done{"a", 2, 1, "git", {"git", "push"}, ".", 1310, true, "push", 1320, "exited", 0, 5, "ab", tail};
  require_ok(store.insert_call("r1", "a", 2, done));
  require_ok(store.finish_call("r1", "a", 2, done));
  CallRecord open{"a", 2, 2, "gh", {"gh", "pr"}, "sub", 1330, false, "", {}, "running", {}, 0, "", ""};
  require_ok(store.insert_call("r1", "a", 2, open));
  nlohmann::json state = {{"model", "m"}, {"messages", {{{"role", "user"}}, {{"role", "assistant"}}, {{"n", 3}}}}};
  require_ok(store.save_checkpoint("r1", "a", 2, 2, state));
  for (int64_t seq = 1; seq <= 3; ++seq)
    require_ok(store.insert_event(EventRecord{"r1", seq, 1000 + seq, "step.started", "a", {{"seq", seq}}}));
  require_ok(store.commit());
  auto queue = hearth::ci::DeliveryQueue::open(store);
  BOOST_REQUIRE(queue.ok());
  require_ok((*queue)->begin());
  require_ok((*queue)->add({"d2", "push", "", "{\"n\":2}", "x2", 5000, "accepted", {"r9"}, {"x.toml"}, "", 0}));
  require_ok((*queue)->add({"d1", "issues", "opened", "{\"n\":1}", "x1", 5000, "started", {"r1"}, {"build.toml"}, "", 0}));
  (*queue)->commit([](const hearth::Status& s) { require_ok(s); });
  CompiledWorkflows made(store);  // its table
  require_ok(store.tables().execute("INSERT INTO compiled_workflows (hash, path, form) VALUES (?1, ?2, ?3)",
                                    {"abc", "/repo/.hearth/workflows/build.toml", "form-text"}, "test"));
  require_ok(prepare_checkout_records(store));
  require_ok(record_checkout(store, "r1", "0123456789abcdef0123456789abcdef01234567"));
}

// Everything the store holds of write_everything's run, as JSON (bytes in hex).
json everything(hearth::engine::Store& store) {
  auto run = store.load_run("r1");
  BOOST_REQUIRE(run.ok());
  json out = {{"run", {run->workflow, run->workflow_path, run->workflow_hash, run->workflow_text, run->payload,
                       run->repo, hearth::to_string(run->status), run->created_at, run->error}}};
  // Each Result kept in a local: a range-for over *temporary would dangle.
  auto steps = store.load_steps("r1");
  auto calls = store.load_calls("r1");
  auto checkpoints = store.load_checkpoints("r1");
  auto events = store.load_events("r1", 0);
  BOOST_REQUIRE(steps.ok() && calls.ok() && checkpoints.ok() && events.ok());
  for (auto& s : *steps) {
    json attempts = json::array();
    for (auto& a : s.attempt_list)
      attempts.push_back({a.number, a.started_at, a.finished_at.value_or(-1), a.exit_code.value_or(-1), a.reason,
                          hex(a.output_tail), a.output_bytes});
    out["steps"].push_back({s.id, hearth::to_string(s.status), s.attempts, s.failures, s.outputs, attempts});
  }
  for (auto& c : *calls)
    out["calls"].push_back({c.step_id, c.attempt, c.sequence, c.command, c.argv, c.cwd, c.started_at, c.allowed, c.rule,
                            c.finished_at.value_or(-1), c.outcome, c.exit_code.value_or(-1), c.output_bytes,
                            c.output_sha256, hex(c.output_tail)});
  for (auto& c : *checkpoints)
    out["checkpoints"].push_back({c.step_id, c.attempt, c.turns, c.saved_at, c.state});
  for (auto& e : *events) out["events"].push_back({e.seq, e.at, e.type, e.step_id, e.data});
  auto queue = hearth::ci::DeliveryQueue::open(store);
  BOOST_REQUIRE(queue.ok());
  auto left = (*queue)->leftovers();
  BOOST_REQUIRE(left.ok());
  for (auto* list : {&left->resume, &left->close})
    for (auto& d : *list) out["deliveries"].push_back({d.id, d.event, d.action, d.digest, d.received_at, d.state,
                                                        d.run_ids, d.workflows});
  auto forms = store.tables().query("SELECT hash, path, form FROM compiled_workflows", {}, "test");
  BOOST_REQUIRE(forms.ok());
  for (auto& f : *forms) out["forms"].push_back({f.text(0), f.text(1), f.text(2)});
  auto checkout = hearth::engine::recorded_checkout(store, "r1");
  BOOST_REQUIRE(checkout.ok());
  out["checkout"] = checkout->value_or("none");
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store_tools)

BOOST_AUTO_TEST_CASE(a_history_migrated_to_postgres_reads_the_same_and_its_interrupted_run_resumes_there) {
  Repo repo;
  std::string gated = make_history(repo);
  json before = repo.runs();
  BOOST_REQUIRE(before.size() == 3u);

  const std::string secret = "pw-migrate-51c";
  std::string url = with_password(pg_server().fresh_database(), secret);
  auto moved = repo.hearth({"store", "migrate", "--from", repo.default_state().string(), "--to", url});
  REQUIRE_EXIT(moved, 0);
  BOOST_TEST(!contains(moved.out + moved.err, secret), shown(moved));
  BOOST_TEST(contains(moved.out, "***"), shown(moved));

  // The same runs, newest first, with every step, attempt and output.
  json after = repo.runs({"--store", url});
  BOOST_REQUIRE_EQUAL(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(after[i]["id"] == before[i]["id"]);
    BOOST_TEST(after[i]["workflow"] == before[i]["workflow"]);
    std::string id = before[i]["id"].get<std::string>();
    json there = Repo::parse_json(repo.hearth({"show", "--json", id, "--store", url}), "hearth show --store");
    BOOST_TEST(comparable(there) == comparable(repo.show(id)), "run " << id);
  }
  // The failed run's output came along with its attempt.
  std::string broken = repo.runs({"--workflow", "broken"})[0]["id"].get<std::string>();
  auto shown_text = repo.hearth({"show", broken, "--store", url});
  REQUIRE_EXIT(shown_text, 0);
  BOOST_TEST(contains(shown_text.out, "about to fail"), shown(shown_text));

  // Resumed from PostgreSQL: a, stored as succeeded, does not run again.
  write_file(repo.root() / "resumed", "");
  auto resumed = repo.hearth({"resume", gated, "--store", url});
  REQUIRE_EXIT(resumed, 0);
  BOOST_TEST(read_file(repo.root() / "log") == "a\nb\n");
  json done = Repo::parse_json(repo.hearth({"show", "--json", gated, "--store", url}), "hearth show --store");
  BOOST_TEST(done["status"] == "succeeded");
  BOOST_TEST(step_of(done, "a")["attempts"] == 1);
  // The SQLite file was only read: there the run is still unfinished.
  BOOST_TEST(repo.show(gated)["status"] != "succeeded");

  // And back, into a new SQLite file: the resumed run comes along.
  fs::path back = repo.root() / "back.db";
  REQUIRE_EXIT(repo.hearth({"store", "migrate", "--from", url, "--to", back.string()}), 0);
  json returned = Repo::parse_json(repo.hearth({"show", "--json", gated, "--state", back.string()}), "hearth show");
  BOOST_TEST(returned["status"] == "succeeded");
  BOOST_TEST(repo.runs({"--state", back.string()}).size() == 3u);
}

BOOST_AUTO_TEST_CASE(check_reports_the_schema_found_and_what_opening_it_would_do) {
  Repo repo;
  add_workflows(repo);
  REQUIRE_EXIT(repo.hearth({"run", "hello"}), 0);
  std::string state = repo.default_state().string();

  auto text = repo.hearth({"store", "check"});  // the store the other commands use
  expect_stdout(text, 0, {"sqlite", state, "nothing to do", "compiled_workflows 1"});
  json current = check_json(repo, state, 0);
  BOOST_TEST(current["schema_found"] == current["schema_current"]);
  BOOST_TEST(current["runs"] == 1);

  std::string db = pg_server().fresh_database();
  json empty = check_json(repo, db, kUpgrade);
  BOOST_TEST(empty["backend"] == "postgres");
  BOOST_TEST(empty["schema_found"] == 0);
  BOOST_TEST(empty["migration"] == "upgrade");
  // Checking did not create the schema: it is still empty.
  BOOST_TEST(check_json(repo, db, kUpgrade)["schema_found"] == 0);
  REQUIRE_EXIT(repo.hearth({"runs", "--store", db}), 0);  // any command opening it migrates it
  BOOST_TEST(check_json(repo, db, 0)["migration"] == "none");
  // --store before the command, its value not taken for the command's name.
  auto before = repo.hearth({"--store", db, "store", "check", "--json"});
  REQUIRE_EXIT(before, 0);
  BOOST_TEST(json::parse(before.out)["backend"] == "postgres");
  REQUIRE_EXIT(repo.hearth({"--store", db, "runs", "--json"}), 0);

  pg_server().execute(db, "UPDATE schema_version SET version = 99");
  auto newer = repo.hearth({"store", "check", "--store", db});
  expect_stdout(newer, kNewer, {"refused", "99"});
  sqlite_exec(repo.default_state(), "PRAGMA user_version=99");
  BOOST_TEST(check_json(repo, state, kNewer)["migration"] == "refused");
}

BOOST_AUTO_TEST_CASE(check_names_what_it_cannot_read_and_creates_nothing) {
  Repo repo;
  fs::path missing = repo.root() / "nowhere" / "state.db";
  auto o = repo.hearth({"store", "check", missing.string()});
  expect_stderr(o, 1, {"no state database at " + missing.string()});
  BOOST_TEST(!fs::exists(missing.parent_path()));

  write_file(repo.root() / "junk.db", std::string(4096, 'x'));
  expect_stderr(repo.hearth({"store", "check", (repo.root() / "junk.db").string()}), 1, {"junk.db", "not a state database"});

  const std::string secret = "pw-check-9d1";
  std::string nowhere = with_password(pg_server().url("no_such_db"), secret);
  auto refused = repo.hearth({"store", "check", nowhere});
  expect_stderr(refused, 1, {"cannot connect", "no_such_db"});
  BOOST_TEST(!contains(refused.out + refused.err, secret), shown(refused));
}

BOOST_AUTO_TEST_CASE(migrate_refuses_bad_input_and_writes_nothing_to_the_target) {
  Repo repo;
  add_workflows(repo);
  REQUIRE_EXIT(repo.hearth({"run", "hello"}), 0);
  std::string state = repo.default_state().string();
  const std::string secret = "pw-refuse-40a";

  // No source file: named, and not created.
  fs::path missing = repo.root() / "old" / "state.db";
  auto o = repo.hearth({"store", "migrate", "--from", missing.string(), "--to", pg_server().fresh_database()});
  expect_stderr(o, 1, {"no state database at " + missing.string()});
  BOOST_TEST(!fs::exists(missing));

  // A database that is not there, its password never shown.
  auto unreachable = repo.hearth({"store", "migrate", "--from", state, "--to",
                                  with_password(pg_server().url("no_such_db"), secret)});
  expect_stderr(unreachable, 1, {"cannot connect", "no_such_db"});
  BOOST_TEST(!contains(unreachable.out + unreachable.err, secret), shown(unreachable));

  // A URL of another kind is not taken for a file path (nor repeated).
  auto mysql = repo.hearth({"store", "migrate", "--from", state, "--to", "mysql://u:" + secret + "@db/x"});
  expect_stderr(mysql, 1, {"not a postgres:// or postgresql:// one"});
  BOOST_TEST(!contains(mysql.out + mysql.err, secret), shown(mysql));
  BOOST_TEST(!fs::exists(repo.root() / "mysql:"));
  expect_stderr(repo.hearth({"store", "check", "mysql://u:" + secret + "@db/x"}), 1, {"not a postgres://"});

  expect_stderr(repo.hearth({"store", "migrate", "--from", state, "--to", state}), 1, {"the same store"});

  // A source a newer hearth wrote is refused, not downgraded.
  fs::path newer_file = repo.root() / "newer.db";
  fs::copy_file(state, newer_file);
  sqlite_exec(newer_file, "PRAGMA user_version=99");
  expect_stderr(repo.hearth({"store", "migrate", "--from", newer_file.string(), "--to", pg_server().fresh_database()}),
                1, {"the store to migrate from", "schema version 99"});

  // A target a newer hearth wrote.
  std::string newer = pg_server().fresh_database();
  REQUIRE_EXIT(repo.hearth({"runs", "--store", newer}), 0);
  pg_server().execute(newer, "UPDATE schema_version SET version = 99");
  expect_stderr(repo.hearth({"store", "migrate", "--from", state, "--to", newer}), 1,
                {"schema version 99", "newer than this hearth"});

  // A target that already has a history keeps it as it was.
  std::string used = pg_server().fresh_database();
  REQUIRE_EXIT(repo.hearth({"run", "hello", "--store", used}), 0);
  expect_stderr(repo.hearth({"store", "migrate", "--from", state, "--to", used}), 1, {"already holds 1 runs"});
  BOOST_TEST(repo.runs({"--store", used}).size() == 1u);

  // A source table no part of this hearth makes: refused before any copy.
  std::string target = pg_server().fresh_database();
  fs::path odd = repo.root() / "odd.db";
  fs::copy_file(state, odd);
  sqlite_exec(odd, "CREATE TABLE later_feature (x TEXT)");
  expect_stderr(repo.hearth({"store", "migrate", "--from", odd.string(), "--to", target}), 1,
                {"later_feature", "nothing was copied"});
  BOOST_TEST(check_json(repo, target, 0)["runs"] == 0);
}

BOOST_AUTO_TEST_CASE(a_migration_that_fails_midway_leaves_the_target_empty) {
  Repo repo;
  add_workflows(repo);
  REQUIRE_EXIT(repo.hearth({"run", "hello"}), 0);
  REQUIRE_EXIT(repo.hearth({"run", "broken"}), 1);
  // The runs copy, then a delivery whose time is not a number, which
  // SQLite kept (in the queue table as an older hearth made it) and
  // PostgreSQL's bigint refuses: the copy fails after writing runs.
  fs::path state = repo.default_state();
  fs::path damaged = repo.root() / "damaged.db";
  fs::copy_file(state, damaged);
  sqlite_exec(damaged,
              "CREATE TABLE deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT NOT NULL DEFAULT '', "
              "payload TEXT NOT NULL DEFAULT '', digest TEXT NOT NULL, received_at INTEGER NOT NULL, "
              "state TEXT NOT NULL, run_ids TEXT NOT NULL DEFAULT '[]', workflows TEXT NOT NULL DEFAULT '[]', "
              "error TEXT NOT NULL DEFAULT '');"
              "INSERT INTO deliveries (id, event, digest, received_at, state) VALUES ('d1', 'push', 'x', 'soon', 'done')");
  std::string target = pg_server().fresh_database();
  auto o = repo.hearth({"store", "migrate", "--from", damaged.string(), "--to", target});
  expect_stderr(o, 1, {"cannot copy a row"});
  BOOST_TEST(check_json(repo, target, 0)["runs"] == 0);
  // The same target takes the undamaged history afterwards; --to from $HEARTH_STORE.
  REQUIRE_EXIT(repo.hearth({"store", "migrate", "--from", state.string()}, {{"HEARTH_STORE", target}}), 0);
  BOOST_TEST(repo.runs({"--store", target}).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_migration_killed_midway_leaves_the_target_empty) {
  Repo repo;
  add_workflows(repo);
  REQUIRE_EXIT(repo.hearth({"run", "hello"}), 0);
  std::string target = pg_server().fresh_database();
  REQUIRE_EXIT(repo.hearth({"runs", "--store", target}), 0);  // the schema, so that a table can be locked
  // Another session holds the events table: the copy stops at the first
  // event, after writing the run's row, and is killed there.
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(target.c_str()), &PQfinish);
  BOOST_REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  auto exec = [&](PGconn* c, const char* sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql), &PQclear);
    auto st = PQresultStatus(r.get());
    BOOST_REQUIRE_MESSAGE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, sql << ": " << PQerrorMessage(c));
    return st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string();
  };
  exec(holder.get(), "BEGIN");
  exec(holder.get(), "LOCK TABLE events IN ACCESS EXCLUSIVE MODE");
  {
    HearthProcess migrating({{"store", "migrate", "--from", repo.default_state().string(), "--to", target}, {},
                             repo.root()});
    std::unique_ptr<PGconn, decltype(&PQfinish)> watcher(PQconnectdb(target.c_str()), &PQfinish);
    BOOST_REQUIRE(PQstatus(watcher.get()) == CONNECTION_OK);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (exec(watcher.get(), "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass") ==
           "0") {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "the migration never waited on the events table:\n" << migrating.err());
      BOOST_REQUIRE_MESSAGE(!migrating.wait_status(std::chrono::milliseconds(1)),
                            "the migration ended before reaching the events table:\n" << migrating.err());
    }
    migrating.kill_and_reap();
  }
  exec(holder.get(), "ROLLBACK");
  BOOST_TEST(check_json(repo, target, 0)["runs"] == 0);
  REQUIRE_EXIT(repo.hearth({"store", "migrate", "--from", repo.default_state().string(), "--to", target}), 0);
  BOOST_TEST(repo.runs({"--store", target}).size() == 1u);
}

BOOST_AUTO_TEST_CASE(every_table_comes_through_postgres_and_back_as_it_was) {
  Repo repo;
  TempDir local;
  fs::path source = repo.root() / "state.db", back = repo.root() / "back.db";
  json original;
  {
    auto store = open_store(source.string(), local);
    write_everything(*store);
    original = everything(*store);
  }
  BOOST_REQUIRE_EQUAL(original["deliveries"].size(), 2u);
  BOOST_TEST(original["deliveries"][0][0] == "d2");  // queued first, at the same instant
  std::string db = pg_server().fresh_database();
  auto there = repo.hearth({"store", "migrate", "--from", source.string(), "--to", db, "--json"});
  REQUIRE_EXIT(there, 0);
  json counted = json::parse(there.out)["rows"];
  BOOST_TEST(counted["command_calls"] == 2);
  BOOST_TEST(counted["agent_messages"] == 3);
  BOOST_TEST(counted["deliveries"] == 2);
  BOOST_TEST(counted["compiled_workflows"] == 1);
  BOOST_TEST(counted["run_checkouts"] == 1);
  REQUIRE_EXIT(repo.hearth({"store", "migrate", "--from", db, "--to", back.string()}), 0);
  for (const std::string& copy : {db, back.string()}) {
    BOOST_TEST_CONTEXT(copy) {
      auto store = open_store(copy, local);
      BOOST_TEST(everything(*store).dump() == original.dump());
      // No engine runs it in the copy: the lease did not come along.
      BOOST_TEST(store->load_run("r1")->lease_owner.empty());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
