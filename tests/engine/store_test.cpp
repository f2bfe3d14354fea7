// The run store on a real SQLite file: what is committed survives a re-open;
// a failed write is sticky; damage and newer schemas are refused clearly.
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>

#include <boost/test/unit_test.hpp>

#include "engine/checkout_records.h"
#include "engine/compiled_workflows.h"
#include "engine/sqlite_migrations.h"
#include "engine/sqlite_store.h"
#include "engine/store_image.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/engine/faulty_vfs.h"
#include "tests/engine/fixture.h"
#include "tests/engine/schema9.h"

using hearth::engine::AttemptRecord;
using hearth::engine::EventRecord;
using hearth::engine::RunRecord;
using hearth::engine::StepRecord;
using hearth::engine::Store;
using hearth::testing::TempDir;

namespace {

RunRecord sample_run(const std::string& id, int64_t at) {
  return RunRecord{id, "wf", "wf.toml", "sha256:ab", "[[steps]]", {{"issue", 7}}, "/repo", hearth::RunStatus::running, at, {}, "", "", 0};
}

// Writes one run with a step, an attempt and an event, in one transaction.
void write_sample(Store& store, const std::string& id, int64_t at) {
  BOOST_REQUIRE(store.begin().ok());
  BOOST_REQUIRE(store.insert_run(sample_run(id, at)).ok());
  StepRecord step;
  step.id = "build";
  step.status = hearth::StepStatus::pending;
  BOOST_REQUIRE(store.insert_step(id, step).ok());
  AttemptRecord a;
  a.step_id = "build";
  a.number = 1;
  a.started_at = at;
  BOOST_REQUIRE(store.insert_attempt(id, a).ok());
  a.finished_at = at + 5;
  a.exit_code = 0;
  a.reason = "exited";
  a.output_tail = std::string("bin\0ary\n", 8);
  a.output_bytes = 8;
  BOOST_REQUIRE(store.finish_attempt(id, a).ok());
  step.status = hearth::StepStatus::succeeded;
  step.attempts = 1;
  step.exit_code = 0;
  step.outputs = {{"version", "1.0"}};
  BOOST_REQUIRE(store.update_step(id, step).ok());
  BOOST_REQUIRE(store.insert_event(EventRecord{id, 1, at, "run.started", "", {{"k", "v"}}}).ok());
  BOOST_REQUIRE(store.update_run(id, hearth::RunStatus::succeeded, at + 10, "").ok());
  BOOST_REQUIRE(store.commit().ok());
}

// Turns a store's file into the layout schema 9 wrote: steps, attempts and
// events as they were then (every attempt a row with its output tail, events
// keyed by run id and sequence), with run `old`'s steps written that way: a
// retried step, one running, one pending. The runs table keeps its rows.
void make_version_9(const std::string& path, const std::string& then = "") {
  const std::string sql = std::string(hearth::testing::kToSchema9) + R"sql(
INSERT INTO steps (run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs, failures)
  VALUES ('old', 'build', 0, 'succeeded', 2, 0, 1010, 1020, '{"version":"1.0"}', 1),
         ('old', 'deploy', 1, 'running', 1, NULL, 1030, NULL, '{}', 0),
         ('old', 'notify', 2, 'pending', 0, NULL, NULL, NULL, '{}', 0);
INSERT INTO attempts (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail,
                      output_bytes)
  VALUES ('old', 'build', 1, 1001, 1005, 1, 0, 'exited', x'66697273740a', 6),
         ('old', 'build', 2, 1010, 1020, 0, 0, 'exited', x'62696e006172790a', 8),
         ('old', 'deploy', 1, 1030, NULL, NULL, 0, '', x'', 0);
INSERT INTO events (run_id, seq, at, type, step_id, data)
  VALUES ('old', 1, 1000, 'run.started', '', '{"k":"v"}'), ('old', 2, 1020, 'step.succeeded', 'build', '{}'),
         ('old', 3, 1030, 'step.started', 'deploy', '{"attempt":1}');
)sql";
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, (sql + then).c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}


// Every object of a SQLite file's schema and every column as SQLite reads it.
std::vector<std::string> schema_of(const std::string& path) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::vector<std::string> out;
  for (const char* q : {"SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name",
                        "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk FROM sqlite_schema m, "
                        "pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid",
                        "PRAGMA user_version"}) {
    sqlite3_stmt* st = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(db, q, -1, &st, nullptr) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        auto* text = sqlite3_column_text(st, i);
        row += std::string(text ? reinterpret_cast<const char*>(text) : "NULL") + "|";
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store)

BOOST_AUTO_TEST_CASE(committed_state_survives_reopening) {
  TempDir dir;
  std::string path = (dir.path / "nested" / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
    write_sample(**store, "r1", 1000);
    write_sample(**store, "r2", 2000);
  }
  auto store = Store::open(path);
  BOOST_REQUIRE(store.ok());
  auto runs = (*store)->list_runs(10);
  BOOST_REQUIRE(runs.ok());
  BOOST_REQUIRE(runs->size() == 2u);
  BOOST_TEST((*runs)[0].id == "r2");  // newest first
  auto run = (*store)->load_run("r1");
  BOOST_REQUIRE(run.ok());
  BOOST_TEST(run->status == hearth::RunStatus::succeeded);
  BOOST_TEST(run->payload["issue"] == 7);
  BOOST_TEST(*run->finished_at == 1010);
  auto steps = (*store)->load_steps("r1");
  BOOST_REQUIRE(steps.ok());
  BOOST_REQUIRE(steps->size() == 1u);
  BOOST_TEST((*steps)[0].outputs["version"] == "1.0");
  BOOST_REQUIRE((*steps)[0].attempt_list.size() == 1u);
  BOOST_TEST((*steps)[0].attempt_list[0].output_tail == std::string("bin\0ary\n", 8));
  auto events = (*store)->load_events("r1");
  BOOST_REQUIRE(events.ok());
  BOOST_TEST(events->at(0).data["k"] == "v");
}

BOOST_AUTO_TEST_CASE(statuses_are_stored_as_words_and_an_unknown_word_reads_as_failed) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  { write_sample(**Store::open(path), "r1", 1000); }
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, "SELECT r.status, s.status FROM runs r JOIN steps s ON s.run_id = r.id", -1, &st,
                                   nullptr) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "succeeded");
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))) == "succeeded");
  sqlite3_finalize(st);
  // A word this version does not know (edited by hand, or written by a
  // later one) is never taken for a success.
  BOOST_REQUIRE(sqlite3_exec(db, "UPDATE runs SET status='paused'; UPDATE steps SET status='deferred'", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::open(path);
  BOOST_REQUIRE(store.ok());
  BOOST_TEST((*store)->load_run("r1")->status == hearth::RunStatus::failed);
  BOOST_TEST((*store)->load_steps("r1")->at(0).status == hearth::StepStatus::failed);
}

BOOST_AUTO_TEST_CASE(an_uncommitted_transaction_leaves_nothing_behind) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE(store.ok());
    BOOST_REQUIRE((*store)->begin().ok());
    BOOST_REQUIRE((*store)->insert_run(sample_run("lost", 1)).ok());
    // No commit: the store closes with the transaction open, as a crash would.
  }
  auto store = Store::open(path);
  BOOST_REQUIRE(store.ok());
  BOOST_TEST(!*(*store)->run_exists("lost"));
}

BOOST_AUTO_TEST_CASE(a_failed_write_is_sticky) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  auto store = Store::open(path);
  BOOST_REQUIRE(store.ok());
  // Another connection makes every event insert fail.
  sqlite3* other = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(other, "CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  BOOST_REQUIRE((*store)->begin().ok());
  BOOST_REQUIRE((*store)->insert_run(sample_run("r", 1)).ok());
  auto failed = (*store)->insert_event(EventRecord{"r", 1, 1, "run.started", "", {}});
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST(failed.message().find("disk says no") != std::string::npos, failed.message());
  // Later writes, even ones that would succeed, report the same error.
  auto later = (*store)->insert_run(sample_run("r2", 2));
  BOOST_REQUIRE(!later.ok());
  BOOST_TEST(later.message() == failed.message());
  BOOST_TEST(!(*store)->commit().ok());
  BOOST_TEST(!(*store)->health().ok());
  // Nothing of the failed transaction was kept.
  auto reopened = Store::open(path);
  BOOST_REQUIRE(reopened.ok());
  BOOST_TEST(!*(*reopened)->run_exists("r"));
}

BOOST_AUTO_TEST_CASE(a_newer_schema_is_refused) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  { BOOST_REQUIRE(Store::open(path).ok()); }
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto store = Store::open(path);
  BOOST_REQUIRE(!store.ok());
  BOOST_TEST(store.message().find("schema version 99") != std::string::npos, store.message());
}

namespace {
int page_size_of(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  int size = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    size = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return size;
}
}  // namespace

// A new file is made with 2 KiB pages (a step's checkpoint writes half the
// bytes); a file made with SQLite's 4 KiB pages, as releases before did,
// keeps them and its runs, and takes new ones.
BOOST_AUTO_TEST_CASE(a_new_store_has_small_pages_and_an_older_file_keeps_its_own) {
  TempDir dir;
  std::string fresh = (dir.path / "fresh.db").string(), older = (dir.path / "older.db").string();
  { BOOST_REQUIRE(Store::open(fresh).ok()); }
  BOOST_TEST(page_size_of(fresh) == 2048);

  sqlite3* db = nullptr;
  sqlite3_open(older.c_str(), &db);
  BOOST_REQUIRE(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) ==
                SQLITE_OK);
  sqlite3_close(db);
  {
    auto store = Store::open(older);
    BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
    write_sample(**store, "before", 1000);
  }
  BOOST_TEST(page_size_of(older) == 4096);
  auto store = Store::open(older);
  BOOST_REQUIRE(store.ok());
  write_sample(**store, "after", 2000);
  BOOST_TEST((*store)->load_run("before")->status == hearth::RunStatus::succeeded);
  BOOST_TEST((*store)->load_steps("after")->at(0).attempt_list.at(0).output_tail == std::string("bin\0ary\n", 8));
}

// The store at `path` opens and takes a run.
void takes_a_run(const std::filesystem::path& path) {
  auto store = Store::open(path.string());
  BOOST_REQUIRE(store.ok());
  write_sample(**store, "after", 1000);
  BOOST_TEST((*store)->load_run("after")->status == hearth::RunStatus::succeeded);
}

// The names in `dir`.
std::set<std::string> names_in(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

BOOST_AUTO_TEST_CASE(a_new_store_is_made_whole_under_its_name_with_every_part) {
  TempDir dir;
  auto path = dir.path / "state.db";
  {
    auto store = Store::open(path.string());
    BOOST_REQUIRE(store.ok());
    auto parts = (*store)->tables().query("SELECT part FROM part_versions ORDER BY part", {}, "test");
    BOOST_REQUIRE(parts.ok());
    std::vector<std::string> names;
    for (auto& row : *parts) names.push_back(row.text(0));
    BOOST_TEST(names == (std::vector<std::string>{"compiled_workflows", "run_checkouts"}),
               boost::test_tools::per_element());
  }
  // Nothing of the making is left beside it, and the file is in WAL mode
  // on its own (another program's connection finds it so).
  BOOST_TEST(names_in(dir.path) == std::set<std::string>{"state.db"}, boost::test_tools::per_element());
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  BOOST_REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

BOOST_AUTO_TEST_CASE(a_store_whose_making_fails_leaves_no_file_and_the_next_open_makes_it) {
  TempDir dir;
  auto path = dir.path / "state.db";
  hearth::testing::FaultyVfs::install();
  hearth::testing::FaultyVfs::fail_write_at(1);  // the disk is full while the file is made
  auto failed = Store::open(path.string(), hearth::testing::FaultyVfs::kName);
  hearth::testing::FaultyVfs::fail_write_at(0);
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST(failed.message().find("state.db") != std::string::npos, failed.message());
  BOOST_TEST(failed.message().find("full") != std::string::npos, failed.message());
  BOOST_TEST(names_in(dir.path) == std::set<std::string>{}, boost::test_tools::per_element());
  takes_a_run(path);
}

// A new store is the build's image of one, and that image is the file the
// SQL makes: the same pages, byte for byte. Only the header's record of the
// SQLite version that wrote it (offsets 92 to 99) may differ, should the
// library be upgraded after the build.
BOOST_AUTO_TEST_CASE(a_new_store_is_the_image_and_the_image_is_the_file_the_sql_makes) {
  TempDir dir;
  const std::string image(hearth::engine::fresh_store_image());
  BOOST_REQUIRE_MESSAGE(!image.empty(), "this build has no image of a new store");
  auto by_sql = dir.path / "by-sql.db";
  auto made = hearth::engine::SqliteStore::build_new_file(by_sql.string(), nullptr);
  BOOST_REQUIRE_MESSAGE(made.ok(), made.message());
  std::string sql_bytes = hearth::testing::read_file(by_sql);
  BOOST_REQUIRE(sql_bytes.size() == image.size());
  auto unversioned = [](std::string bytes) { return bytes.replace(92, 8, 8, '\0'); };
  BOOST_TEST((unversioned(sql_bytes) == unversioned(image)), "the image is not the file the SQL makes");

  auto path = dir.path / "state.db";
  { BOOST_REQUIRE(Store::open(path.string()).ok()); }
  BOOST_TEST((hearth::testing::read_file(path) == image), "a new store is not the image");
  takes_a_run(path);
}

// The image cannot be written whole (here: the file size limit, as a full
// disk would): the open fails naming the file, nothing is left, and the
// next open makes the store.
BOOST_AUTO_TEST_CASE(a_new_store_whose_image_cannot_be_written_leaves_nothing) {
  TempDir dir;
  auto path = dir.path / "state.db";
  rlimit old{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 4096;
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  auto failed = Store::open(path.string());
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST(failed.message().find("cannot write") != std::string::npos, failed.message());
  BOOST_TEST(failed.message().find(path.string()) != std::string::npos, failed.message());
  BOOST_TEST(names_in(dir.path) == std::set<std::string>{}, boost::test_tools::per_element());
  takes_a_run(path);
}

BOOST_AUTO_TEST_CASE(what_a_killed_making_left_goes_once_old_and_nothing_else_is_touched) {
  TempDir dir;
  namespace fs = std::filesystem;
  // A making killed before its rename leaves its file; a fresh one may be
  // another process's making in progress.
  hearth::testing::write_file(dir.path / "state.db-new-0123456789abcdef", "old");
  fs::last_write_time(dir.path / "state.db-new-0123456789abcdef",
                      fs::file_time_type::clock::now() - std::chrono::hours(1));
  hearth::testing::write_file(dir.path / "state.db-new-fedcba9876543210", "recent");
  hearth::testing::write_file(dir.path / "notes-new-0123456789abcdef", "mine");
  fs::last_write_time(dir.path / "notes-new-0123456789abcdef", fs::file_time_type::clock::now() - std::chrono::hours(1));
  BOOST_REQUIRE(Store::open((dir.path / "state.db").string()).ok());
  BOOST_TEST(names_in(dir.path) ==
                 (std::set<std::string>{"notes-new-0123456789abcdef", "state.db", "state.db-new-fedcba9876543210"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_database_is_refused_and_left_alone) {
  TempDir dir;
  auto path = dir.path / "state.db";
  std::string junk(8192, 'x');
  hearth::testing::write_file(path, junk);
  auto store = Store::open(path.string());
  BOOST_REQUIRE(!store.ok());
  BOOST_TEST(store.message().find(path.string()) != std::string::npos, store.message());
  BOOST_TEST(hearth::testing::read_file(path) == junk);
}

namespace {
nlohmann::json conversation(int messages) {
  nlohmann::json state = {{"hearth_agent_state", 1}, {"system", "sys"}, {"turns", messages / 2}};
  state["messages"] = nlohmann::json::array();
  for (int i = 0; i < messages; ++i)
    state["messages"].push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "m" + std::to_string(i)}});
  return state;
}
}  // namespace

BOOST_AUTO_TEST_CASE(an_agent_checkpoint_appends_its_new_messages_and_reads_back_whole) {
  TempDir dir;
  auto store = Store::open((dir.path / "state.db").string());
  BOOST_REQUIRE(store.ok());
  write_sample(**store, "r", 1000);
  auto& s = **store;
  BOOST_REQUIRE(s.save_checkpoint("r", "build", 1, 1, conversation(2)).ok());
  // The next checkpoint hands over only messages 2 and 3.
  auto state = conversation(4);
  nlohmann::json header = state;
  header.erase("messages");
  nlohmann::json fresh = {state["messages"][2], state["messages"][3]};
  BOOST_TEST(*s.checkpoint_messages("r", "build", 1) == 2u);
  BOOST_REQUIRE(s.append_checkpoint("r", "build", 1, 2, header, fresh, 2).ok());
  auto loaded = s.load_checkpoint("r", "build", 1);
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE(loaded->has_value());
  BOOST_TEST(**loaded == state, (*loaded)->dump());
  auto all = s.load_checkpoints("r");
  BOOST_REQUIRE(all.ok());
  BOOST_REQUIRE(all->size() == 1u);
  BOOST_TEST(all->front().state == state);
  BOOST_TEST(all->front().turns == 2);
}

BOOST_AUTO_TEST_CASE(processes_opening_a_new_store_at_once_all_open_it) {
  // Two commands started together in a fresh repository both make the
  // state database: neither may fail with "database is locked" (SQLite
  // refuses one of two concurrent switches to WAL without waiting).
  TempDir dir;
  for (int round = 0; round < 30; ++round) {
    std::string path = (dir.path / ("state" + std::to_string(round) + ".db")).string();
    pid_t children[3];
    for (auto& child : children) {
      child = fork();
      BOOST_REQUIRE(child >= 0);
      if (child == 0) _exit(Store::open(path).ok() ? 0 : 1);
    }
    for (pid_t child : children) {
      int status = 0;
      BOOST_REQUIRE(waitpid(child, &status, 0) == child);
      BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "round " << round << ": an open failed");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_new_store_has_the_schema_an_upgraded_one_reaches) {
  // A new file gets the latest schema in one go; an old one is migrated step
  // by step. Both must end the same, or an upgraded store would differ from
  // every store the tests make.
  TempDir dir;
  std::string fresh = (dir.path / "fresh.db").string();
  std::string old = (dir.path / "old.db").string();
  BOOST_REQUIRE(Store::open(fresh).ok());
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(old.c_str(), &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, hearth::engine::kSqliteMigrations[0], nullptr, nullptr, nullptr) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, "PRAGMA user_version=1", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  {
    // A new file comes with the engine's parts' tables; an old one gets each as
    // its part first opens it.
    auto upgraded = Store::open(old);
    BOOST_REQUIRE(upgraded.ok());
    BOOST_REQUIRE(hearth::engine::prepare_compiled_workflows(**upgraded).ok());
    BOOST_REQUIRE(hearth::engine::prepare_checkout_records(**upgraded).ok());
  }
  auto a = schema_of(fresh), b = schema_of(old);
  BOOST_TEST(a.size() > 20u);
  BOOST_TEST(a == b, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_version_5_store_keeps_its_agent_conversations) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE(store.ok());
    write_sample(**store, "old", 1000);
  }
  // A checkpoint as version 5 wrote it: the whole state in one row.
  auto state = conversation(3);
  make_version_9(path, "DROP TABLE agent_messages; DROP TABLE part_versions; PRAGMA user_version=5; "
                       "INSERT INTO agent_checkpoints VALUES ('old', 'build', 1, 1, '" + state.dump() + "', 5)");
  auto store = Store::open(path);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  auto loaded = (*store)->load_checkpoint("old", "build", 1);
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE(loaded->has_value());
  BOOST_TEST(**loaded == state, (*loaded)->dump());
  BOOST_TEST(*(*store)->checkpoint_messages("old", "build", 1) == 3u);
}

BOOST_AUTO_TEST_CASE(a_version_2_store_keeps_its_runs) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE(store.ok());
    write_sample(**store, "old", 1000);
  }
  // What a store written by an older release looks like.
  make_version_9(path, "DROP TABLE part_versions; DROP TABLE command_calls; DROP TABLE agent_checkpoints; "
                       "DROP TABLE agent_messages; ALTER TABLE steps DROP COLUMN result; PRAGMA user_version=2");
  auto store = Store::open(path);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  BOOST_TEST((*store)->load_run("old")->status == hearth::RunStatus::succeeded);
  BOOST_TEST((*store)->load_steps("old")->at(0).attempt_list.at(1).output_tail == std::string("bin\0ary\n", 8));
  auto events = (*store)->load_events("old");
  BOOST_REQUIRE(events.ok());
  BOOST_REQUIRE(events->size() == 3u);
  BOOST_TEST(events->at(0).data == nlohmann::json({{"k", "v"}}));
  // The rebuilt tables still refuse an attempt of a step that does not exist.
  hearth::engine::AttemptRecord orphan;
  orphan.step_id = "nope";
  orphan.number = 1;
  BOOST_TEST(!(*store)->insert_attempt("old", orphan).ok());
}

BOOST_AUTO_TEST_CASE(a_version_9_store_keeps_every_attempt_tail_and_event) {
  TempDir dir;
  std::string path = (dir.path / "state.db").string();
  {
    auto store = Store::open(path);
    BOOST_REQUIRE(store.ok());
    write_sample(**store, "old", 1000);
  }
  make_version_9(path);
  auto store = Store::open(path);
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.message()));
  Store& s = **store;
  auto steps = s.load_steps("old");
  BOOST_REQUIRE(steps.ok());
  BOOST_REQUIRE(steps->size() == 3u);
  const StepRecord& build = steps->at(0);
  BOOST_TEST(build.id == "build");
  BOOST_TEST(build.outputs["version"] == "1.0");
  BOOST_TEST(build.failures == 1);
  BOOST_REQUIRE(build.attempt_list.size() == 2u);
  BOOST_TEST(build.attempt_list[0].number == 1);
  BOOST_TEST(*build.attempt_list[0].exit_code == 1);
  BOOST_TEST(build.attempt_list[0].output_tail == "first\n");
  BOOST_TEST(build.attempt_list[1].number == 2);
  BOOST_TEST(build.attempt_list[1].started_at == 1010);
  BOOST_TEST(*build.attempt_list[1].finished_at == 1020);
  BOOST_TEST(build.attempt_list[1].output_tail == std::string("bin\0ary\n", 8));
  BOOST_TEST(build.attempt_list[1].output_bytes == 8);
  BOOST_REQUIRE(steps->at(1).attempt_list.size() == 1u);
  BOOST_TEST(!steps->at(1).attempt_list[0].finished_at.has_value());
  BOOST_TEST(steps->at(2).attempt_list.empty());
  // A resume reads the last attempt of each step, without its tail.
  // In any order: each row is found by its step id.
  auto resumed = s.load_steps_to_resume("old");
  BOOST_REQUIRE(resumed.ok());
  auto resumed_step = [&](size_t position) -> const StepRecord& {
    for (auto& r : *resumed)
      if (r.id == steps->at(position).id) return r;
    BOOST_FAIL("step " << steps->at(position).id << " not read for a resume");
    return resumed->front();
  };
  BOOST_REQUIRE(resumed->size() == steps->size());
  BOOST_REQUIRE(resumed_step(0).attempt_list.size() == 1u);
  BOOST_TEST(resumed_step(0).attempt_list[0].number == 2);
  BOOST_TEST(resumed_step(1).attempt_list.at(0).started_at == 1030);
  BOOST_TEST(resumed_step(1).position == steps->at(1).position);
  // Events keep their order and numbers, and new ones follow them.
  BOOST_TEST(*s.last_event_seq("old") == 3);
  BOOST_REQUIRE(s.insert_event(EventRecord{"old", 4, 1040, "step.failed", "deploy", {}}).ok());
  write_sample(s, "new", 2000);
  auto events = s.load_events("old", 1);
  BOOST_REQUIRE(events.ok());
  BOOST_REQUIRE(events->size() == 3u);
  BOOST_TEST(events->at(0).seq == 2);
  BOOST_TEST(events->at(1).data == nlohmann::json({{"attempt", 1}}));
  BOOST_TEST(events->at(2).type == "step.failed");
  BOOST_TEST(s.load_events("new")->size() == 1u);
  BOOST_TEST(*s.last_event_seq("new") == 1);
}

BOOST_AUTO_TEST_CASE(a_retried_step_keeps_each_attempt_and_its_own_tail) {
  TempDir dir;
  auto store = Store::open((dir.path / "state.db").string());
  BOOST_REQUIRE(store.ok());
  Store& s = **store;
  BOOST_REQUIRE(s.insert_run(sample_run("r", 1)).ok());
  StepRecord step;
  step.id = "flaky";
  BOOST_REQUIRE(s.insert_step("r", step).ok());
  for (int n = 1; n <= 3; ++n) {
    AttemptRecord a{"flaky", n, 100 * n, {}, {}, 0, "", "", 0};
    BOOST_REQUIRE(s.insert_attempt("r", a).ok());
    a.finished_at = 100 * n + 50;
    a.exit_code = n == 3 ? 0 : 1;
    a.reason = "exited";
    a.output_tail = n == 2 ? "" : "try " + std::to_string(n) + "\n";
    a.output_bytes = static_cast<int64_t>(a.output_tail.size());
    BOOST_REQUIRE(s.finish_attempt("r", a).ok());
  }
  // An earlier attempt's outcome can still be recorded (a late finish).
  AttemptRecord late{"flaky", 2, 200, 260, 9, 0, "timeout", "late\n", 5};
  BOOST_REQUIRE(s.finish_attempt("r", late).ok());
  auto steps = s.load_steps("r");
  BOOST_REQUIRE(steps.ok());
  auto& list = steps->at(0).attempt_list;
  BOOST_REQUIRE(list.size() == 3u);
  BOOST_TEST(list[0].output_tail == "try 1\n");
  BOOST_TEST(list[1].reason == "timeout");
  BOOST_TEST(*list[1].exit_code == 9);
  BOOST_TEST(list[1].output_tail == "late\n");
  BOOST_TEST(list[2].number == 3);
  BOOST_TEST(*list[2].exit_code == 0);
  BOOST_TEST(list[2].output_tail == "try 3\n");
  // An attempt number recorded already is refused, as a step never recorded.
  BOOST_TEST(!s.insert_attempt("r", AttemptRecord{"flaky", 3, 999, {}, {}, 0, "", "", 0}).ok());
}

BOOST_AUTO_TEST_CASE(an_event_of_an_unknown_run_is_refused) {
  TempDir dir;
  auto store = Store::open((dir.path / "state.db").string());
  BOOST_REQUIRE(store.ok());
  auto s = (*store)->insert_event(EventRecord{"ghost", 1, 1, "run.started", "", {}});
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("run 'ghost'") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(an_unknown_run_id_is_named_in_the_error) {
  TempDir dir;
  auto store = Store::open((dir.path / "state.db").string());
  BOOST_REQUIRE(store.ok());
  auto run = (*store)->load_run("nope");
  BOOST_REQUIRE(!run.ok());
  BOOST_TEST(run.message().find("no run with id 'nope'") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
