// `hearth store check` and `hearth store migrate` end to end: real runs made
// by the real binary in a real SQLite file, moved to a real PostgreSQL
// server (tests/support/pg_server.h) and read, resumed and moved back there.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <boost/test/unit_test.hpp>

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

  // Not a store URL at all.
  expect_stderr(repo.hearth({"store", "migrate", "--from", state, "--to", state}), 1, {"the same store"});

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
  // The same target takes the undamaged history afterwards.
  REQUIRE_EXIT(repo.hearth({"store", "migrate", "--from", state.string(), "--to", target}), 0);
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

BOOST_AUTO_TEST_SUITE_END()
