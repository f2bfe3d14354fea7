// Several `hearth serve` workers on one PostgreSQL database: the real binary,
// a real server (tests/support/pg_server.h), real signed deliveries over
// HTTP on 127.0.0.1. Leases by the database's clock, takeover of a dead
// worker's runs, roles, a database restart under load, and 3 workers with
// 300 deliveries while one is killed and another restarted.
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "ci/webhook.h"
#include "engine/lease.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/support/files.h"
#include "tests/support/hearth_process.h"
#include "tests/support/http_client.h"
#include "tests/support/pg_server.h"
#include "tests/support/shell.h"
#include "tests/support/workflow_toml.h"

using namespace hearth::testing;
using hearth::engine::RunRecord;
using hearth::engine::Store;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* kSecret = "webhook-secret-for-workers";

std::unique_ptr<Store> open_store(const std::string& url, const TempDir& local) {
  auto store = Store::open(url, nullptr, local.str());
  BOOST_REQUIRE_MESSAGE(store.ok(), (store.ok() ? std::string() : store.message()));
  return std::move(*store);
}

// A repository whose workflow `work` starts on push: three steps, each
// appending "<run> <step> <attempt>" to a log outside the repository when it
// runs (the attempt from the step's own directory name, "<step>.<n>").
struct Repo {
  TempDir dir;
  std::filesystem::path log() const { return dir.path / "steps.log"; }
  std::filesystem::path root() const { return dir.path / "repo"; }

  explicit Repo(const std::string& middle = "sleep 0.05", const std::string& sandbox_keys = "") {
    std::filesystem::create_directories(root() / ".hearth" / "workflows");
    std::string note = "echo \"$HEARTH_RUN_ID $HEARTH_STEP_ID $(basename \"$(dirname \"$HEARTH_OUTPUT\")\" | "
                       "cut -d. -f2)\" >> \"$LOG\"\n";
    std::string head = github_head("work", {"push"}) + sandbox_head("local") + sandbox_keys + "[env]\nLOG = " +
                       json(log().string()).dump() + "\n";
    write_file(root() / ".hearth" / "workflows" / "work.toml",
               workflow_toml({{.id = "a", .run = note},
                              {.id = "b", .needs = {"a"}, .run = middle + "\n" + note},
                              {.id = "c", .needs = {"b"}, .run = note}},
                             head));
  }
};

// One `hearth serve` on the shared database. stderr goes to a file (a busy
// worker says much there, and nobody may need to read it for it to go on).
struct Worker {
  std::unique_ptr<HearthProcess> proc;
  int port = 0;
  std::filesystem::path err;

  void start(const Repo& repo, const std::string& url, const std::vector<std::string>& extra, int n) {
    err = repo.dir.path / ("worker" + std::to_string(n) + ".err");
    std::vector<std::string> args{"serve", "--store", url, "--repo", repo.root().string(), "--listen", "127.0.0.1:0",
                                  "--jobs", "4", "--grace", "0.2"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<HearthProcess>(Invocation{args, {{"HEARTH_WEBHOOK_SECRET", kSecret}}, repo.root()},
                                           Launch{{}, {}, err, false, true});
    bool listens = std::find(extra.begin(), extra.end(), "--work") == extra.end();
    auto got = proc->wait_for_stdout(listens ? std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)")
                                             : std::regex("(working), no listener"),
                                     std::chrono::seconds(20));
    BOOST_REQUIRE_MESSAGE(got, "hearth serve did not start: " + read_file(err));
    port = listens ? std::stoi(*got) : 0;
  }
  /// The pid its lease owner string begins with.
  pid_t pid() const { return proc->pid(); }
  /// SIGTERM, then waits for it to end cleanly.
  void stop() {
    proc->signal(SIGTERM);
    auto status = proc->wait_status(std::chrono::seconds(20));
    BOOST_REQUIRE_MESSAGE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0,
                          "hearth serve did not stop cleanly (wait status " << (status ? *status : -1)
                                                                             << "): " << read_file(err));
  }
};

HttpResponse deliver(int port, const std::string& id, int n) {
  json body = {{"ref", "refs/heads/main"}, {"after", "commit-" + std::to_string(n)},
               {"repository", {{"full_name", "octo/app"}}}};
  std::string text = body.dump();
  HttpClient c(port);
  c.send(request_text("POST", "/hooks/github",
                      {{"Content-Type", "application/json"},
                       {"X-GitHub-Event", "push"},
                       {"X-GitHub-Delivery", id},
                       {"X-Hub-Signature-256", "sha256=" + hearth::ci::hmac_sha256_hex(kSecret, text)}},
                      text));
  return c.response();
}

int64_t count(Store& store, const char* sql) {
  auto rows = store.tables().query(sql, {}, "test count");
  BOOST_REQUIRE_MESSAGE(rows.ok(), (rows.ok() ? std::string() : rows.message()));
  return rows->front().integer(0);
}

/// Waits until every one of `n` deliveries is done (failing loudly at the deadline).
void wait_all_done(Store& store, int64_t n, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (count(store, "SELECT count(*) FROM deliveries WHERE state='done'") < n) {
    BOOST_REQUIRE_MESSAGE(Clock::now() < deadline,
                          "deliveries not done in time: " << count(store, "SELECT count(*) FROM deliveries WHERE state='done'")
                                                          << " of " << n);
    usleep(50 * 1000);
  }
}

/// Waits until `pid`'s engine holds the lease of a running run whose step
/// b has started, and returns that run's id.
std::string wait_mid_run(Store& store, pid_t pid, std::chrono::seconds limit) {
  std::string owner = std::to_string(pid) + "@%";
  auto deadline = Clock::now() + limit;
  for (;;) {
    auto rows = store.tables().query(
        "SELECT r.id FROM runs r JOIN steps s ON s.run_id = r.id WHERE r.status='running' AND r.lease_owner LIKE ?1 "
        "AND s.step_id='b' AND s.status='running' LIMIT 1",
        {owner}, "test wait");
    BOOST_REQUIRE(rows.ok());
    if (!rows->empty()) return rows->front().text(0);
    BOOST_REQUIRE_MESSAGE(Clock::now() < deadline, "worker " << pid << " never ran a step b");
    usleep(5 * 1000);
  }
}

// (run, step) -> the attempt numbers the log shows ran.
std::map<std::pair<std::string, std::string>, std::vector<int>> logged_attempts(const Repo& repo) {
  std::map<std::pair<std::string, std::string>, std::vector<int>> out;
  std::istringstream in(read_file(repo.log()));
  std::string run, step;
  int attempt = 0;
  while (in >> run >> step >> attempt) out[{run, step}].push_back(attempt);
  return out;
}

/// What every acknowledged delivery must show: done once, its run
/// succeeded, its history whole (events 1..N, one start, one end), and no
/// step that stored a success ran again (no start after its success in the
/// events; in the log, every attempt that ran is numbered at most the one
/// that succeeded, and ran once). Returns how many runs were taken over.
int check_history(Store& store, const Repo& repo, const std::vector<std::string>& acknowledged) {
  auto ran = logged_attempts(repo);
  int resumed = 0;
  for (const auto& delivery : acknowledged) {
    BOOST_TEST_CONTEXT("delivery " << delivery) {
      auto rows = store.tables().query("SELECT state, error, run_ids FROM deliveries WHERE id=?1", {delivery}, "test");
      BOOST_REQUIRE(rows.ok());
      BOOST_REQUIRE_EQUAL(rows->size(), 1u);
      BOOST_TEST(rows->front().text(0) == "done");
      BOOST_TEST(rows->front().text(1) == "");
      auto run_ids = json::parse(rows->front().text(2));
      BOOST_REQUIRE_EQUAL(run_ids.size(), 1u);
      std::string run_id = run_ids[0];
      auto run = store.load_run(run_id);
      BOOST_REQUIRE_MESSAGE(run.ok(), (run.ok() ? std::string() : run.message()));
      BOOST_TEST(to_string(run->status) == "succeeded");
      BOOST_TEST(run->lease_owner == "");
      auto events = store.load_events(run_id);
      BOOST_REQUIRE(events.ok());
      int starts = 0, finishes = 0;
      std::map<std::string, bool> succeeded;
      for (size_t i = 0; i < events->size(); ++i) {
        const auto& e = (*events)[i];
        BOOST_TEST(e.seq == static_cast<int64_t>(i + 1));  // nothing missing, nothing twice
        if (e.type == "run.started") ++starts;
        if (e.type == "run.finished") ++finishes;
        if (e.type == "run.resumed") ++resumed;
        if (e.type == "step.succeeded") succeeded[e.step_id] = true;
        if (e.type == "step.started") BOOST_TEST(!succeeded[e.step_id], run_id << " " << e.step_id << " ran after its success");
      }
      BOOST_TEST(starts == 1);
      BOOST_TEST(finishes >= 1);
      BOOST_TEST(events->back().type == "run.finished");
      auto steps = store.load_steps(run_id);
      BOOST_REQUIRE(steps.ok());
      for (const auto& st : *steps) {
        BOOST_TEST(to_string(st.status) == "succeeded");
        auto attempts = ran[{run_id, st.id}];
        BOOST_TEST(!attempts.empty(), run_id << " " << st.id << " never ran");
        std::set<int> once(attempts.begin(), attempts.end());
        BOOST_TEST(once.size() == attempts.size(), run_id << " " << st.id << ": an attempt ran twice");
        for (int a : attempts) BOOST_TEST(a <= st.attempts, run_id << " " << st.id << " ran after its success");
      }
    }
  }
  return resumed;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pg_workers)

// Leases are written and compared by the database: a worker whose clock is
// an hour ahead does not take a live run, one whose clock is an hour behind
// takes a stale one, and the engine that lost it learns so at its next
// heartbeat. Two engines taking over the same stale run: one gets it.
BOOST_AUTO_TEST_CASE(leases_follow_the_database_clock_and_one_engine_takes_a_stale_run) {
  std::string url = pg_server().fresh_database();
  TempDir local;
  auto a = open_store(url, local), b = open_store(url, local), c = open_store(url, local);
  RunRecord r;
  r.id = "leased";
  r.workflow = "w";
  r.workflow_path = "/repo/w.toml";
  r.repo = "/repo";
  r.status = hearth::RunStatus::running;
  r.lease_owner = "1@machine-a pidns=1 boot=x id=aaaa";
  BOOST_REQUIRE(a->insert_run(r).ok());
  int64_t hour = 3600 * 1000;

  BOOST_REQUIRE(b->begin().ok());
  auto holder = b->take_lease("leased", "2@machine-b id=bbbb", hearth::engine::now_ms() + hour, 30000);
  BOOST_REQUIRE(holder.ok());
  BOOST_TEST(holder->find("machine-a") != std::string::npos, *holder);
  BOOST_REQUIRE(b->commit().ok());
  BOOST_TEST(a->renew_lease("leased", r.lease_owner, 0).ok());

  // The owner stops renewing: 31 s later by the database's clock.
  pg_server().execute(url, "UPDATE runs SET lease_heartbeat = lease_heartbeat - 31000");
  BOOST_REQUIRE(b->begin().ok());
  holder = b->take_lease("leased", "2@machine-b id=bbbb", hearth::engine::now_ms() - hour, 30000);
  BOOST_REQUIRE(holder.ok());
  BOOST_TEST(*holder == "");
  // A third engine asks while b's takeover is not committed: it waits for
  // it, then finds b's lease.
  std::string third;
  std::thread other([&] {
    BOOST_REQUIRE(c->begin().ok());
    auto h = c->take_lease("leased", "3@machine-c id=cccc", hearth::engine::now_ms(), 30000);
    third = h.ok() ? *h : "error: " + h.message();
    (void)c->commit();
  });
  // c waits on the row b holds.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (count(*a, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type='Lock'") < 1) {
    BOOST_REQUIRE_MESSAGE(Clock::now() < deadline, "the third engine never waited for the row");
    usleep(5 * 1000);
  }
  BOOST_REQUIRE(b->commit().ok());
  other.join();
  BOOST_TEST(third.find("machine-b") != std::string::npos, third);

  auto lost = a->renew_lease("leased", r.lease_owner, 0);
  BOOST_TEST(!lost.ok());
  BOOST_TEST(lost.message().find("taken over by 2@machine-b") != std::string::npos, lost.message());
  BOOST_TEST(a->health().ok());  // not a store failure: only this run stops
}

// --accept stores and runs nothing; --work has no listener and runs what
// was stored. On SQLite the roles are refused.
BOOST_AUTO_TEST_CASE(accept_and_work_roles_split_the_server) {
  Repo repo("true");
  std::string url = pg_server().fresh_database();
  TempDir local;
  auto store = open_store(url, local);

  Worker acceptor;
  acceptor.start(repo, url, {"--accept"}, 0);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back("role-" + std::to_string(i));
    BOOST_REQUIRE_EQUAL(deliver(acceptor.port, ids.back(), i).status, 202);
  }
  acceptor.stop();
  BOOST_TEST(count(*store, "SELECT count(*) FROM runs") == 0);
  BOOST_TEST(count(*store, "SELECT count(*) FROM deliveries WHERE state='accepted'") == 5);

  Worker worker;
  worker.start(repo, url, {"--work"}, 1);
  wait_all_done(*store, 5, std::chrono::seconds(30));
  worker.stop();
  BOOST_TEST(check_history(*store, repo, ids) == 0);

  auto refused = HearthProcess(Invocation{{"serve", "--repo", repo.root().string(), "--listen", "127.0.0.1:0", "--work"},
                                          {{"HEARTH_WEBHOOK_SECRET", kSecret}},
                                          repo.root()})
                     .finish(std::chrono::seconds(15));
  BOOST_TEST(refused.exit_code != 0);
  BOOST_TEST(refused.err.find("--store postgres://") != std::string::npos, refused.err);
}

// A worker killed in the middle of a run: once its lease is stale, another
// worker takes the run over from its checkpoints. Step a, whose success is
// stored, does not run again; b, cut short, runs again; the run succeeds.
BOOST_AUTO_TEST_CASE(a_killed_workers_run_is_taken_over_after_its_lease_expires) {
  Repo repo("while [ ! -f \"$LOG.go\" ]; do sleep 0.02; done");
  std::string url = pg_server().fresh_database();
  TempDir local;
  auto store = open_store(url, local);
  Worker first, second;
  first.start(repo, url, {"--lease-timeout", "1"}, 0);
  BOOST_REQUIRE_EQUAL(deliver(first.port, "taken-1", 1).status, 202);
  std::string run = wait_mid_run(*store, first.pid(), std::chrono::seconds(20));
  first.proc->kill_and_reap();  // the worker and its steps, as when its machine dies
  second.start(repo, url, {"--work", "--lease-timeout", "1"}, 1);
  // Let b finish only once the second worker has the run: the first one's
  // step (in a session of its own, as steps are) is ended by the takeover.
  wait_mid_run(*store, second.pid(), std::chrono::seconds(20));
  write_file(repo.dir.path / "steps.log.go", "");
  wait_all_done(*store, 1, std::chrono::seconds(30));
  second.stop();
  BOOST_TEST(check_history(*store, repo, {"taken-1"}) == 1);
  auto ran = logged_attempts(repo);
  std::vector<int> a_ran = ran[{run, "a"}], b_ran = ran[{run, "b"}];
  BOOST_TEST(a_ran == std::vector<int>{1}, boost::test_tools::per_element());
  BOOST_TEST(b_ran == std::vector<int>{2}, boost::test_tools::per_element());  // attempt 1 was killed before it wrote
}

// A run taken over where its checkout is not (its directory gone, as on
// another machine) gets it made again at the commit it first had, though
// the branch has moved on meanwhile.
BOOST_AUTO_TEST_CASE(a_taken_over_checkout_is_made_again_at_the_recorded_commit) {
  Repo repo("while [ ! -f \"$LOG.go\" ]; do sleep 0.02; done\ngit rev-parse HEAD > \"$LOG.head\"",
            "workspace = \"checkout\"\n");
  std::string root = repo.root().string();
  std::string g = "git -C " + root + " -c user.name=t -c user.email=t@example.com ";
  sh_output("git init -q -b main " + root);
  sh_output(g + "add .hearth/workflows && " + g + "commit -qm one");
  std::string first = sh_output("git -C " + root + " rev-parse HEAD");
  std::string url = pg_server().fresh_database();
  TempDir local;
  auto store = open_store(url, local);
  Worker before, after;
  before.start(repo, url, {"--lease-timeout", "1"}, 0);
  BOOST_REQUIRE_EQUAL(deliver(before.port, "moved-1", 1).status, 202);
  std::string run = wait_mid_run(*store, before.pid(), std::chrono::seconds(20));
  before.proc->kill_and_reap();
  write_file(repo.root() / "later.txt", "later\n");
  sh_output(g + "add later.txt && " + g + "commit -qm two");
  std::string second = sh_output("git -C " + root + " rev-parse HEAD");
  BOOST_REQUIRE(second != first);
  std::filesystem::remove_all(repo.root() / ".hearth" / "workspaces" / run);
  after.start(repo, url, {"--work", "--lease-timeout", "1"}, 1);
  wait_mid_run(*store, after.pid(), std::chrono::seconds(20));
  write_file(repo.dir.path / "steps.log.go", "");
  wait_all_done(*store, 1, std::chrono::seconds(30));
  after.stop();
  BOOST_TEST(check_history(*store, repo, {"moved-1"}) == 1);
  BOOST_TEST(read_file(repo.dir.path / "steps.log.head") == first + "\n");
}

// The database restarts (pg_ctl stop -m fast, start) while runs are in the
// middle of their steps: the worker reconnects with backoff, every run
// finishes, nothing acknowledged before or after is lost.
BOOST_AUTO_TEST_CASE(a_database_restart_mid_run_loses_nothing) {
  Repo repo("while [ ! -f \"$LOG.go\" ]; do sleep 0.02; done");
  std::string url = pg_server().fresh_database();
  TempDir local;
  Worker worker;
  worker.start(repo, url, {}, 0);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back("before-" + std::to_string(i));
    BOOST_REQUIRE_EQUAL(deliver(worker.port, ids.back(), i).status, 202);
  }
  {
    auto store = open_store(url, local);
    wait_mid_run(*store, worker.pid(), std::chrono::seconds(20));
  }
  pg_server().restart();
  write_file(repo.dir.path / "steps.log.go", "");
  for (int i = 0; i < 10; ++i) {
    ids.push_back("after-" + std::to_string(i));
    BOOST_REQUIRE_EQUAL(deliver(worker.port, ids.back(), 100 + i).status, 202);
  }
  auto store = open_store(url, local);
  wait_all_done(*store, 20, std::chrono::seconds(60));
  worker.stop();
  BOOST_TEST(check_history(*store, repo, ids) == 0);
  BOOST_TEST(read_file(worker.err).find("reconnecting") != std::string::npos);
}

// The database goes away while a delivery comes in: the server's loop does
// not wait for it. /healthz keeps answering at once while the delivery
// waits on the intake's connection; once the database is back that
// delivery is acknowledged (202), claimed and run, and nothing stored
// before is lost.
BOOST_AUTO_TEST_CASE(the_listener_answers_while_the_database_is_down) {
  Repo repo("true");
  std::string url = pg_server().fresh_database();
  TempDir local;
  Worker worker;
  worker.start(repo, url, {"--lease-timeout", "2"}, 0);
  BOOST_REQUIRE_EQUAL(deliver(worker.port, "up-1", 1).status, 202);
  {
    auto store = open_store(url, local);
    wait_all_done(*store, 1, std::chrono::seconds(30));
  }
  std::atomic<int> during{0};
  std::thread sender;
  struct Joined {
    std::thread& t;
    ~Joined() {
      if (t.joinable()) t.join();
    }
  } joined{sender};
  pg_server().restart([&] {
    sender = std::thread([&] { during = deliver(worker.port, "down-1", 2).status; });
    usleep(300 * 1000);  // the delivery is read, and waits for the database
    for (int i = 0; i < 4; ++i) {
      auto asked = Clock::now();
      HttpClient c(worker.port);
      BOOST_REQUIRE(c.send(request_text("GET", "/healthz", {}, "")));
      auto headed = [](const std::string& got) { return got.find("\r\n\r\n") != std::string::npos; };
      BOOST_REQUIRE_MESSAGE(c.read_until(headed, std::chrono::seconds(2)), "the server closed the connection");
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked);
      BOOST_TEST(c.received().rfind("HTTP/1.1 200", 0) == 0, c.received());
      BOOST_TEST(took.count() < 500, "/healthz took " << took.count() << " ms with the database down");
      usleep(250 * 1000);
    }
    BOOST_TEST(during == 0, "answered " << during << " while the database was down");
  });
  sender.join();
  BOOST_TEST(during == 202);
  auto store = open_store(url, local);
  wait_all_done(*store, 2, std::chrono::seconds(30));
  worker.stop();
  BOOST_TEST(check_history(*store, repo, {"up-1", "down-1"}) == 0);
  BOOST_TEST(read_file(worker.err).find("reconnecting") != std::string::npos);
}

// Three workers, 300 deliveries spread over them; one is SIGKILLed in the
// middle of a run, another stopped (SIGTERM) and started again. Every
// acknowledged delivery runs to completion once, no stored success runs
// again, and every run's history is whole.
BOOST_AUTO_TEST_CASE(three_workers_300_deliveries_one_killed_one_restarted) {
  Repo repo;
  std::string url = pg_server().fresh_database();
  TempDir local;
  auto store = open_store(url, local);
  std::vector<std::string> lease{"--lease-timeout", "3"};
  Worker w[3];
  for (int i = 0; i < 3; ++i) w[i].start(repo, url, lease, i);
  bool alive[3] = {true, true, true};
  std::vector<std::string> acknowledged;
  int turn = 0;
  for (int n = 0; n < 300; ++n) {
    if (n == 100) {
      wait_mid_run(*store, w[0].pid(), std::chrono::seconds(20));
      w[0].proc->kill_and_reap();
      alive[0] = false;
    }
    if (n == 200) {
      w[1].stop();
      w[1].start(repo, url, lease, 3);
    }
    do turn = (turn + 1) % 3;
    while (!alive[turn]);
    std::string id = "d-" + std::to_string(n);
    auto r = deliver(w[turn].port, id, n);
    BOOST_REQUIRE_MESSAGE(r.status == 202, id << ": " << r.status << " " << r.body);
    acknowledged.push_back(id);
  }
  wait_all_done(*store, 300, std::chrono::seconds(60));
  w[1].stop();
  w[2].stop();
  BOOST_TEST(check_history(*store, repo, acknowledged) >= 1);  // the killed worker's run was taken over
  BOOST_TEST(count(*store, "SELECT count(*) FROM runs") == 300);
}

BOOST_AUTO_TEST_SUITE_END()
