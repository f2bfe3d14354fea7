// Durability by damage: the real `hearth` binary is SIGKILLed at random
// instants while it runs a 32-step DAG, started again, and killed again,
// until the run completes. The promise under test (docs/durability.md):
// kill -9 the engine at any instant, start it again, and the
// run finishes as if nothing happened — no completed step runs twice, no
// stored result is lost, and every step that was interrupted follows its
// retry policy.
//
// The kill delays come from a PRNG seeded by HEARTH_CRASH_SEED (else the
// clock); the seed is printed and named in every failure. It replays the
// delays, not the engine's timing, so a failure may need a few tries to recur.
//
// The same promise holds on either store: suite `crash` keeps the state in
// the repository's SQLite file, suite `crash_postgres` in a database of a
// real PostgreSQL server (tests/support/pg_server.h), with fewer kills so
// that the two together stay within CI's time.
//
// How a run is observed. Every step appends to `journal` in the repository:
//   start <step> <pid>                  first thing it does
//   saw <step> <pid> <need> <token>     the token output of each need, as interpolated
//   done <step> <pid> <token>           last thing, after writing its outputs
// and publishes `token` (unique per process), `seen` (its needs' tokens) and a
// multi-line `notes`. After each kill the test kills the step process groups
// the engine left behind (they outlive it, as after a real crash), so the
// journal stops growing, then reads the store with `hearth show --json`. The
// journal lines written during one engine life form that life's segment.
//
// What is asserted, and why it is exactly what the engine guarantees:
//  1. The run ends succeeded with every step succeeded, each step's last
//     attempt exited 0 and every earlier attempt is "interrupted" (nothing
//     in this workflow fails, so the only reason to run a step again is a kill).
//  2. Every process start is backed by a recorded attempt: in each life, the
//     start lines of a step are at most the attempts recorded for it in that
//     life (an attempt is committed before its process starts, and no attempt
//     starts two processes). Not equal: a kill between the commit and the
//     spawn leaves an attempt that never started. A life that ends on its
//     own (the run completed, or failed by point 6) spawns every attempt it
//     records, so there they are equal.
//  3. A step the store records as succeeded stays so in every later snapshot
//     with the same outputs and attempt count, and no "start <step>" line
//     follows the snapshot in which it was first seen succeeded. A step that
//     wrote "done" but was killed before its outcome committed may run again:
//     that attempt was interrupted, not completed.
//  4. The step that becomes succeeded in a life started exactly once in it,
//     and its stored token is the one its last process wrote in "done".
//  5. What dependents saw equals what is stored: every "saw" line of every
//     attempt (interrupted ones too: any attempt starts only after its needs
//     succeeded, and their outputs never change) and every stored `seen`
//     carry the final stored tokens of the needs.
//  6. The retry policy: interrupted attempts are retried, but a step
//     interrupted kMaxInterruptions times in a row fails ("it may be what
//     kills the engine"). With random kills that happens; the test then
//     checks the failure is exactly that — the step failed right after its
//     kMaxInterruptions-th consecutive interrupted attempt, never earlier,
//     never later — and resumes the failed run as a user would.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "tests/support/pg_server.h"
#include "tests/support/testdata.h"
#include "workflows/workflow.h"

using namespace hearth::testing;

namespace {

constexpr int kJobs = 3;
// How much killing one suite does: at least `min_kills` kills of a live
// engine over at least `min_runs` runs, and no more than `max_runs` runs;
// kills land uniformly in [0, max_delay_ms] after a start. An engine on
// PostgreSQL takes longer to start (libpq loaded, a connection, a round trip
// per statement): its kills spread wider, or most would land before any work.
struct Budget {
  int min_kills, min_runs, max_runs, max_delay_ms;
};
constexpr Budget kSqliteBudget{100, 3, 30, 150};
constexpr Budget kPostgresBudget{30, 1, 30, 600};  // a quiet machine ends runs sooner: more runs to reach the kills
constexpr int kMaxLives = 200;        // engine starts for one run before giving up

// ---- the workflow ----------------------------------------------------------

struct StepSpec {
  std::string id;
  std::vector<std::string> needs;
};

// root -> a1..a6 -> b1..b6 (each needs two a's) -> join -> c1..c8 ->
// d1..d4 (each needs two c's) -> e1 -> ... -> e5 -> final (also needs b1, c8).
std::vector<StepSpec> dag() {
  std::vector<StepSpec> s{{"root", {}}};
  auto n = [](const char* p, int i) { return p + std::to_string(i); };
  for (int i = 1; i <= 6; ++i) s.push_back({n("a", i), {"root"}});
  for (int i = 1; i <= 6; ++i) s.push_back({n("b", i), {n("a", i), n("a", i % 6 + 1)}});
  s.push_back({"join", {"b1", "b2", "b3", "b4", "b5", "b6"}});
  for (int i = 1; i <= 8; ++i) s.push_back({n("c", i), {"join"}});
  for (int i = 1; i <= 4; ++i) s.push_back({n("d", i), {n("c", 2 * i - 1), n("c", 2 * i)}});
  s.push_back({"e1", {"d1", "d2", "d3", "d4"}});
  for (int i = 2; i <= 5; ++i) s.push_back({n("e", i), {n("e", i - 1)}});
  s.push_back({"final", {"e5", "b1", "c8"}});
  return s;
}

// Short but not instant: 0 to 40 ms of sleep, so kills land before, during
// and after the scripts, and in the engine between them.
std::string script(const StepSpec& s, size_t index) {
  std::string r =
      "j=\"$HEARTH_WORKSPACE/journal\"\n"
      "echo \"start $HEARTH_STEP_ID $$\" >> \"$j\"\n"
      "token=\"$HEARTH_STEP_ID.$$.$RANDOM$RANDOM\"\n"
      "seen=\n";
  for (auto& need : s.needs) {
    std::string value = "${{ steps." + need + ".outputs.token }}";
    r += "echo \"saw $HEARTH_STEP_ID $$ " + need + " " + value + "\" >> \"$j\"\n";
    r += "seen=\"$seen+" + need + ":" + value + "\"\n";
  }
  if (size_t cs = index * 3 % 5; cs > 0) r += "sleep 0.0" + std::to_string(cs) + "\n";
  r += "echo \"step $HEARTH_STEP_ID working\"\n"
       "{\n"
       "  echo \"token=$token\"\n"
       "  echo \"seen=$seen\"\n"
       "  echo \"notes<<EOF\"\n"
       "  echo \"pid $$\"\n"
       "  echo \"EOF\"\n"
       "} >> \"$HEARTH_OUTPUT\"\n"
       "echo \"done $HEARTH_STEP_ID $$ $token\" >> \"$j\"\n";
  return r;
}

std::string workflow_toml(const std::vector<StepSpec>& steps) {
  std::string t = "name = \"crash\"\n";
  for (size_t i = 0; i < steps.size(); ++i) {
    t += "\n[[steps]]\nid = \"" + steps[i].id + "\"\nneeds = [";
    for (size_t k = 0; k < steps[i].needs.size(); ++k) t += (k ? ", \"" : "\"") + steps[i].needs[k] + "\"";
    t += "]\nrun = '''\n" + script(steps[i], i) + "'''\n";
  }
  return t;
}

// The `seen` output a step must store, given its needs' stored tokens.
std::string expected_seen(const StepSpec& s, const std::map<std::string, std::string>& tokens) {
  std::string seen;
  for (auto& need : s.needs) seen += "+" + need + ":" + tokens.at(need);
  return seen;
}

// ---- processes ---------------------------------------------------------------

// Waits until the process behind `pidfd` has exited; false at the deadline.
bool wait_pidfd(int pidfd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{pidfd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0)));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

/// A `hearth` started in `cwd` with stdout to `out` and stderr to `err`
/// (appended), in its own process group, with the test's environment plus
/// `marker` (NAME=VALUE), which every step it starts inherits, and
/// HEARTH_STORE=`store` when `store` is not empty. Killed and reaped at
/// scope exit if still running.
HearthProcess start_hearth(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& out,
                           const fs::path& err, const std::string& marker, const std::string& store) {
  auto eq = marker.find('=');
  std::map<std::string, std::string> env{{marker.substr(0, eq), marker.substr(eq + 1)}};
  if (!store.empty()) env["HEARTH_STORE"] = store;
  return HearthProcess({args, env, cwd}, Launch{{}, out, err, /*only_env=*/false, /*own_group=*/true});
}

// Pids of live processes whose environment holds `marker` exactly.
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid == getpid()) continue;
    std::string env = '\0' + read_file(entry.path() / "environ");  // empty for a zombie
    if (env.find('\0' + marker + '\0') != std::string::npos) found.push_back(pid);
  }
  return found;
}

// Kills every process (and its process group) that carries `marker`: the
// steps a killed engine left running, and their children. Rescans until none
// is left, since a step may fork while being killed. Returns how many it killed.
int kill_leftovers(const std::string& marker) {
  auto deadline = Clock::now() + 10s;
  std::set<pid_t> killed;
  for (auto found = processes_with(marker); !found.empty(); found = processes_with(marker)) {
    BOOST_REQUIRE_MESSAGE(Clock::now() < deadline, found.size() << " step processes survive SIGKILL for 10 s");
    for (pid_t pid : found) {
      int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      pid_t group = getpgid(pid);
      if (group > 0 && group != getpgrp()) ::kill(-group, SIGKILL);
      ::kill(pid, SIGKILL);
      if (fd >= 0) {
        wait_pidfd(fd, deadline);
        close(fd);
      }
      killed.insert(pid);
    }
  }
  return static_cast<int>(killed.size());
}

// ---- what the store and the journal say -------------------------------------

struct StepSnap {
  std::string status, reason;
  int attempts = 0;
  json outputs = json::object();
  json attempt_list = json::array();
};

/// The run as `hearth show --json` printed it while no engine was running.
struct Snapshot {
  bool recorded = false;  // false: the engine died before the run was committed
  std::string status;
  std::map<std::string, StepSnap> steps;
  std::string token(const std::string& step) const { return steps.at(step).outputs.value("token", ""); }
};

struct Line {
  std::string kind, step, pid, need, token;  // need: "saw" lines only
  std::string text;
};

std::vector<Line> parse_journal(const std::string& text) {
  std::vector<Line> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::vector<std::string> f;
    std::istringstream words(l);
    for (std::string w; words >> w;) f.push_back(w);
    Line line{f.empty() ? "" : f[0], f.size() > 1 ? f[1] : "", f.size() > 2 ? f[2] : "", "", "", l};
    bool ok = (line.kind == "start" && f.size() == 3) || (line.kind == "done" && f.size() == 4) ||
              (line.kind == "saw" && (f.size() == 4 || f.size() == 5));  // an empty token is reported below
    BOOST_REQUIRE_MESSAGE(ok, "malformed journal line: '" << l << "'");
    if (line.kind == "saw") {
      line.need = f[3];
      line.token = f.size() == 5 ? f[4] : "";
    } else if (line.kind == "done") {
      line.token = f[3];
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string tail(const std::string& text, size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

unsigned long failed_assertions() {
  using namespace boost::unit_test;
  return results_collector.results(framework::current_test_case().p_id).p_assertions_failed;
}

// ---- one run, killed until it completes --------------------------------------

/// Tallies of where kills landed, for the suite's message.
struct KillStats {
  int kills = 0, lives = 0, most_lives = 0, leftovers = 0, policy_failures = 0;
  int before_recorded = 0;    // the run was not committed yet
  int no_step_running = 0;    // starting up, adopting, between passes, finishing
  int before_start = 0;       // steps with an attempt committed, no line written yet (spawning)
  int during_script = 0;      // steps whose process was running
  int before_outcome = 0;     // steps whose script had finished, outcome not committed
};

class CrashRun {
 public:
  /// `store`: a postgres:// URL the run is kept in; empty: the repository's SQLite file.
  CrashRun(std::string run_id, std::mt19937_64& rng, KillStats& stats, int max_delay_ms, std::string store = {})
      : id_(std::move(run_id)),
        rng_(rng),
        stats_(stats),
        max_delay_ms_(max_delay_ms),
        marker_("HEARTH_CRASH_TEST=" + repo_.str()),
        store_(std::move(store)) {
    fs::create_directories(root() / ".hearth" / "workflows");
    write_file(root() / ".hearth" / "workflows" / "crash.toml", workflow_toml(specs_));
    write_file(root() / "journal", "");
  }

  /// Starts, kills and restarts the engine until the run completes.
  void drive() {
    for (int life = 1;; ++life) {
      BOOST_TEST_CONTEXT("run " << id_ << ", life " << life) {
        BOOST_REQUIRE_MESSAGE(life <= kMaxLives, "run " << id_ << " did not complete in " << kMaxLives
                                                       << " engine starts\nlog:\n" << tail(read_file(log())));
        if (!one_life(life)) continue;
        stats_.most_lives = std::max(stats_.most_lives, life);
        return;
      }
    }
  }

  /// The checks on the completed run (see the top of the file).
  void check_final() {
    unsigned long failed_before = failed_assertions();
    BOOST_TEST_CONTEXT("run " << id_ << " completed") { check_completed_run(); }
    // keep() only on a failure: a message's operands are evaluated even
    // when the check passes, which left a copy of every run behind.
    if (failed_assertions() != failed_before)
      BOOST_FAIL("run " << id_ << ": repository, state and journal kept in " << keep());
  }

 private:
  fs::path root() const { return repo_.path; }
  fs::path log() const { return root() / "hearth.log"; }

  // A copy of the repository (state, journal, log) for a post-mortem.
  fs::path keep() const {
    fs::path to = fs::temp_directory_path() / ("hearth-crash-" + id_ + "-" + std::to_string(getpid()));
    std::error_code ec;
    fs::remove_all(to, ec);
    fs::copy(root(), to, fs::copy_options::recursive, ec);
    return to;
  }

  void check_completed_run() {
    const Snapshot& f = last_;
    auto lines = parse_journal(read_file(root() / "journal"));
    BOOST_TEST(f.status == "succeeded");
    std::map<std::string, std::string> tokens;
    for (auto& s : specs_) tokens[s.id] = f.token(s.id);
    std::map<std::string, std::string> last_pid, done_token;
    for (size_t i = 0; i < lines.size(); ++i) {
      const Line& l = lines[i];
      BOOST_REQUIRE_MESSAGE(f.steps.count(l.step), "journal names unknown step: " << l.text);
      if (l.kind == "start") last_pid[l.step] = l.pid;
      if (l.kind == "done") done_token[l.step + " " + l.pid] = l.token;
      if (l.kind == "start" && first_succeeded_at_.count(l.step))
        BOOST_CHECK_MESSAGE(i < first_succeeded_at_[l.step],
                            "step " << l.step << " started again (journal line " << i + 1
                                    << ") after the store recorded it succeeded (before line "
                                    << first_succeeded_at_[l.step] + 1 << ")");
      if (l.kind == "saw")
        BOOST_CHECK_MESSAGE(l.token == tokens[l.need], "step " << l.step << " (pid " << l.pid << ") saw " << l.need
                                                               << ".token '" << l.token << "' but the store holds '"
                                                               << tokens[l.need] << "'");
    }
    for (auto& s : specs_) {
      BOOST_TEST_CONTEXT("step " << s.id) {
        const StepSnap& st = f.steps.at(s.id);
        BOOST_TEST(st.status == "succeeded");
        BOOST_TEST(st.outputs.value("seen", "?") == expected_seen(s, tokens));
        BOOST_TEST(st.outputs.value("notes", "").rfind("pid ", 0) == 0);
        // The stored outputs are those of the last process that ran it.
        BOOST_REQUIRE_MESSAGE(last_pid.count(s.id), "no start line");
        BOOST_TEST(done_token[s.id + " " + last_pid[s.id]] == tokens[s.id]);
        check_policy(s.id, st);
      }
    }
  }

  // One engine start. True once the run has completed.
  bool one_life(int life) {
    ++stats_.lives;
    // Either way of starting again, at random. Before the run is recorded only
    // `run` knows it; once it is recorded as succeeded (the kill came after the
    // last commit), only `run --run-id` answers with the stored result, which
    // is the point: `resume` refuses a finished run.
    std::vector<std::string> args;
    bool resume = last_.recorded && last_.status != "succeeded" && std::bernoulli_distribution(0.5)(rng_);
    if (resume) args = {"resume", id_, "--jobs", std::to_string(kJobs)};
    else args = {"run", "crash", "--run-id", id_, "--jobs", std::to_string(kJobs)};
    auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, max_delay_ms_)(rng_));
    {
      std::ofstream(log(), std::ios::app) << "=== life " << life << ": hearth " << args[0] << ", kill after "
                                          << delay.count() << " ms\n";
    }
    int status = 0;
    bool killed = false;
    {
      HearthProcess engine = start_hearth(args, root(), log(), log(), marker_, store_);
      auto exited = engine.wait_status(delay);
      if (exited) status = *exited;
      else {
        status = engine.kill_and_reap();
        killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
      }
    }
    stats_.leftovers += kill_leftovers(marker_);
    Snapshot now = snapshot();
    auto lines = parse_journal(read_file(root() / "journal"));
    BOOST_REQUIRE(lines.size() >= journal_seen_);
    std::vector<Line> segment(lines.begin() + static_cast<std::ptrdiff_t>(journal_seen_), lines.end());
    unsigned long failed_before = failed_assertions();
    check_life(now, segment, killed);
    if (failed_assertions() > failed_before)
      BOOST_FAIL("stopping at the first engine life that broke the promise (hearth "
                 << args[0] << ", " << (killed ? "killed" : "exited before the kill") << " at " << delay.count()
                 << " ms); repository, state and journal kept in " << keep() << "\nlog:\n"
                 << tail(read_file(log())));
    for (auto& [id, st] : now.steps)
      if (st.status == "succeeded" && !first_succeeded_at_.count(id)) first_succeeded_at_[id] = lines.size();
    journal_seen_ = lines.size();
    last_ = std::move(now);
    if (killed) {
      ++stats_.kills;
      return false;
    }
    BOOST_REQUIRE_MESSAGE(WIFEXITED(status), "hearth died of signal " << WTERMSIG(status) << " before the kill\nlog:\n"
                                                                       << tail(read_file(log())));
    int code = WEXITSTATUS(status);
    // 1: the run failed, which check_life() accepted only as the retry
    // policy giving up on a step interrupted too often. Resume it.
    BOOST_REQUIRE_MESSAGE(code == 0 || (code == 1 && last_.status == "failed"),
                          "hearth exited " << code << " with the run " << last_.status << "\nlog:\n"
                                           << tail(read_file(log())));
    return code == 0;
  }

  Snapshot snapshot() {
    fs::path out = root() / "show.json", err = root() / "show.err";
    fs::remove(out);
    fs::remove(err);
    int status = 0;
    {
      HearthProcess show = start_hearth({"show", "--json", id_}, root(), out, err, marker_, store_);
      auto exited = show.wait_status(20s);
      BOOST_REQUIRE_MESSAGE(exited, "hearth show did not exit within 20 s");
      status = *exited;
    }
    Snapshot s;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && read_file(err).find("no run with id") != std::string::npos)
      return s;
    BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "hearth show exited with wait status " << status << ": " << read_file(err));
    json j;
    try {
      j = json::parse(read_file(out));
    } catch (const json::exception& e) {
      BOOST_FAIL("hearth show --json printed invalid JSON (" << e.what() << "):\n" << read_file(out));
    }
    s.recorded = true;
    s.status = j.at("status").get<std::string>();
    for (auto& js : j.at("steps")) {
      StepSnap st;
      st.status = js.at("status").get<std::string>();
      st.reason = js.at("reason").get<std::string>();
      st.attempts = js.at("attempts").get<int>();
      st.outputs = js.at("outputs");
      st.attempt_list = js.at("attempt_list");
      s.steps[js.at("id").get<std::string>()] = std::move(st);
    }
    return s;
  }

  // Checks what one life did, from the snapshots before and after it and the
  // journal lines its steps wrote (points 2, 3, 4 and 6 at the top).
  void check_life(const Snapshot& now, const std::vector<Line>& segment, bool killed) {
    if (!now.recorded) {
      BOOST_CHECK_MESSAGE(!last_.recorded, "the run was recorded, and then it was gone");
      BOOST_CHECK_MESSAGE(segment.empty(), "steps ran although the run was never recorded");
      if (killed) ++stats_.before_recorded;
      return;
    }
    // The engine of this life is dead (killed, or exited): an unfinished run
    // must read as interrupted, never as running.
    BOOST_CHECK_MESSAGE(now.status == "interrupted" || now.status == "failed" || now.status == "succeeded",
                        "run status " << now.status);
    BOOST_REQUIRE_EQUAL(now.steps.size(), specs_.size());
    bool any_failed = false, any_started = false;
    for (auto& [id, st] : now.steps) any_failed = any_failed || st.status == "failed";
    for (auto& [id, st] : now.steps) {
      BOOST_TEST_CONTEXT("step " << id << " (" << st.status << ", " << st.attempts << " attempts)") {
        const StepSnap* before = last_.recorded ? &last_.steps.at(id) : nullptr;
        std::vector<const Line*> mine;
        for (auto& l : segment)
          if (l.step == id) mine.push_back(&l);
        check_step_life(now, id, before, mine, killed);
        if (st.status == "skipped") BOOST_CHECK_MESSAGE(any_failed, "skipped with no step failed: " << st.reason);
        any_started = any_started || (st.status == "running" && st.attempts > (before ? before->attempts : 0));
      }
    }
    if (killed && !any_started) ++stats_.no_step_running;
  }

  // One step in one life; `mine` are the journal lines its processes wrote then.
  void check_step_life(const Snapshot& now, const std::string& id, const StepSnap* before,
                       const std::vector<const Line*>& mine, bool killed) {
    const StepSnap& st = now.steps.at(id);
    int earlier = before ? before->attempts : 0, added = st.attempts - earlier;
    int starts = 0, dones = 0;
    std::string pid;  // of the last process started
    for (auto* l : mine) {
      if (l->kind == "start") ++starts, pid = l->pid;
      dones += l->kind == "done";
    }
    BOOST_CHECK_MESSAGE(added >= 0, "attempts went from " << earlier << " to " << st.attempts);
    BOOST_CHECK_MESSAGE(starts <= added, starts << " processes started in this life but " << added
                                                << " attempts were recorded");
    if (!killed)
      BOOST_CHECK_MESSAGE(starts == added, "the engine ended on its own but started " << starts << " processes for "
                                                                                      << added << " new attempts");
    check_attempts(st);
    if (before && before->status == "succeeded") {
      BOOST_CHECK_MESSAGE(st.status == "succeeded" && st.attempts == before->attempts && st.outputs == before->outputs,
                          "a succeeded step changed: was " << before->outputs.dump() << " in " << before->attempts
                                                           << " attempts, now " << st.status << " "
                                                           << st.outputs.dump());
    } else if (st.status == "succeeded") {
      // It became succeeded in this life: by one process, whose token is stored.
      BOOST_CHECK_MESSAGE(starts == 1, "became succeeded after " << starts << " starts in one life");
      bool stored = false;
      for (auto* l : mine) stored = stored || (l->kind == "done" && l->pid == pid && l->token == now.token(id));
      BOOST_CHECK_MESSAGE(stored, "stored token " << now.token(id) << " was not written by its process " << pid);
    }
    if (st.status == "failed" && (!before || before->status != "failed")) {
      check_policy_failure(id, st);
      ++stats_.policy_failures;
    }
    if (killed && st.status == "running" && added > 0)
      ++(starts == 0 ? stats_.before_start : dones == 0 ? stats_.during_script : stats_.before_outcome);
  }

  // The stored attempts of a step: numbered 1..n; every one before the last
  // interrupted; the last one matches the step's status.
  static void check_attempts(const StepSnap& st) {
    const json& a = st.attempt_list;
    BOOST_REQUIRE_EQUAL(a.size(), static_cast<size_t>(st.attempts));
    for (size_t i = 0; i < a.size(); ++i) {
      BOOST_CHECK_EQUAL(a[i].at("number").get<int>(), static_cast<int>(i) + 1);
      if (i + 1 < a.size())
        BOOST_CHECK_MESSAGE(a[i].at("reason") == "interrupted", "attempt " << i + 1 << ": " << a[i].dump());
    }
    if (a.empty()) {
      BOOST_CHECK_MESSAGE(st.status == "pending" || st.status == "skipped", "no attempts but " << st.status);
      return;
    }
    const json& last = a.back();
    if (st.status == "succeeded")
      BOOST_CHECK_MESSAGE(last.at("reason") == "exited" && last.at("exit_code") == 0, "last attempt " << last.dump());
    else if (st.status == "running")
      BOOST_CHECK_MESSAGE(last.at("finished_at").is_null(), "running, but its last attempt finished: " << last.dump());
    else if (st.status == "pending" || st.status == "failed" || st.status == "skipped")
      BOOST_CHECK_MESSAGE(last.at("reason") == "interrupted", st.status << " after attempt " << last.dump());
    else
      BOOST_CHECK_MESSAGE(false, "unexpected status " << st.status << ": " << st.reason);
  }

  // A step seen failed for the first time: only the retry policy may fail a
  // step here, right after its kMaxInterruptions-th interruption in a row.
  void check_policy_failure(const std::string& id, const StepSnap& st) {
    BOOST_CHECK_MESSAGE(st.reason.find("interrupted " + std::to_string(hearth::workflows::kMaxInterruptions) +
                                       " times in a row") != std::string::npos,
                        "failed: " << st.reason);
    policy_failures_[id].insert(st.attempts);
  }

  // Replays the retry policy over the final attempt list: the interruption
  // count grows with each interrupted attempt and resets when an attempt
  // finishes or when the failed run is resumed; the step must have failed
  // exactly at the attempts where the count reached kMaxInterruptions.
  void check_policy(const std::string& id, const StepSnap& st) {
    std::set<int> expected;
    int in_a_row = 0;
    for (auto& a : st.attempt_list) {
      if (a.at("reason") != "interrupted") {
        in_a_row = 0;
      } else if (++in_a_row == hearth::workflows::kMaxInterruptions) {
        expected.insert(a.at("number").get<int>());
        in_a_row = 0;
      }
    }
    std::set<int>& seen = policy_failures_[id];
    BOOST_CHECK_MESSAGE(seen == expected, "the step was failed by the retry policy after attempts {"
                                              << join(seen) << "}; replaying the policy over its attempts, after {"
                                              << join(expected) << "}");
  }

  static std::string join(const std::set<int>& v) {
    std::string s;
    for (int n : v) s += (s.empty() ? "" : ",") + std::to_string(n);
    return s;
  }

  TempDir repo_;
  std::string id_;
  std::mt19937_64& rng_;
  KillStats& stats_;
  int max_delay_ms_;
  std::string marker_;  // in the environment of this run's engines and steps
  std::string store_;   // HEARTH_STORE of every hearth started; empty: SQLite
  std::vector<StepSpec> specs_ = dag();
  Snapshot last_;
  size_t journal_seen_ = 0;                          // journal lines before the current life
  std::map<std::string, size_t> first_succeeded_at_;  // journal size when first seen succeeded
  std::map<std::string, std::set<int>> policy_failures_;  // attempt count when seen newly failed
};

uint64_t crash_seed() {
  if (const char* s = std::getenv("HEARTH_CRASH_SEED")) return std::strtoull(s, nullptr, 10);
  return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

// Drives crash runs until `budget` is spent, each run kept in the store
// `fresh_store()` returns (a postgres:// URL; empty: the repository's SQLite file).
template <class FreshStore>
void kill_until_done(const Budget& budget, FreshStore&& fresh_store) {
  uint64_t seed = crash_seed();
  BOOST_TEST_MESSAGE("crash seed " << seed << " (set HEARTH_CRASH_SEED=" << seed << " to replay the kill delays)");
  BOOST_TEST_CONTEXT("HEARTH_CRASH_SEED=" << seed) {
    std::mt19937_64 rng(seed);
    KillStats stats;
    int runs = 0;
    while (runs < budget.min_runs || (stats.kills < budget.min_kills && runs < budget.max_runs)) {
      CrashRun run("crash-" + std::to_string(++runs), rng, stats, budget.max_delay_ms, fresh_store());
      run.drive();
      run.check_final();
    }
    BOOST_TEST_MESSAGE(runs << " runs, " << stats.lives << " engine starts (at most " << stats.most_lives
                       << " for one run), " << stats.kills << " kills of a live engine, " << stats.leftovers
                       << " step processes left behind.\nKills before the run was recorded: " << stats.before_recorded
                       << ", with no step started in that life: " << stats.no_step_running
                       << ".\nSteps caught between the attempt's commit and the script's first line: "
                       << stats.before_start << ", in their script: " << stats.during_script
                       << ", after it, before the outcome committed: " << stats.before_outcome
                       << ".\nSteps failed by the retry policy (interrupted " << hearth::workflows::kMaxInterruptions
                       << " times in a row), then resumed: " << stats.policy_failures);
    BOOST_TEST(stats.kills >= budget.min_kills);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(crash)

BOOST_AUTO_TEST_CASE(sigkill_at_random_instants_loses_nothing_and_runs_nothing_twice) {
  kill_until_done(kSqliteBudget, [] { return std::string(); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(crash_postgres)

BOOST_AUTO_TEST_CASE(sigkill_at_random_instants_loses_nothing_and_runs_nothing_twice_on_postgres) {
  kill_until_done(kPostgresBudget, [] { return pg_server().fresh_database(); });
}

BOOST_AUTO_TEST_SUITE_END()
