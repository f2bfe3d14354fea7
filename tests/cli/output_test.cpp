// How `hearth` writes: colour on a terminal only (and never with TERM=dumb,
// NO_COLOR or --color=never; always with --color=always), and one shape for
// the JSON of runs and steps. The real built binary, with its output on a real
// pseudo-terminal where a test needs one.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/repo.h"
#include "tests/support/workflow_toml.h"

extern char** environ;

using namespace hearth::testing::cli;

namespace {

// A colour or style escape (SGR), as opposed to the cursor movements of the
// live display.
const std::regex kSgr("\x1b\\[[0-9;]*m");

const std::string kTwoSteps = workflow_toml(
    {
        {.id = "build", .run = "echo compiling"},
        {.id = "check", .needs = {"build"}, .run = "echo checking; exit 3"},
    },
    sandbox_head("local"));

/// Runs hearth in `repo` with stdout and stderr on a pseudo-terminal (stdin
/// /dev/null) and returns everything it wrote there (in `out`) and how it
/// exited. The environment is the test's minus TERM, NO_COLOR and
/// HEARTH_STATE, plus `env`.
Outcome on_terminal(const Repo& repo, const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  BOOST_REQUIRE(master >= 0);
  BOOST_REQUIRE(grantpt(master) == 0 && unlockpt(master) == 0);
  // The test holds the terminal open too, so that the master cannot see a
  // hang-up before hearth has opened it; it lets go once hearth has exited.
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  BOOST_REQUIRE(slave >= 0);

  std::vector<std::string> argv{hearth::testing::hearth_bin().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envv;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e, name = kv.substr(0, kv.find('='));
    if (name != "TERM" && name != "NO_COLOR" && name != "HEARTH_STATE" && !env.count(name)) envv.push_back(kv);
  }
  for (auto& [k, v] : env) envv.push_back(k + "=" + v);
  auto cstrings = [](std::vector<std::string>& v) {
    std::vector<char*> p;
    for (auto& s : v) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  };
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, slave, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, slave, STDERR_FILENO);
  posix_spawn_file_actions_addchdir_np(&fa, repo.root().c_str());
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, cstrings(argv).data(), cstrings(envv).data());
  posix_spawn_file_actions_destroy(&fa);
  BOOST_REQUIRE(rc == 0);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  BOOST_REQUIRE(pidfd >= 0);

  Outcome o;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  bool exited = false;
  for (;;) {
    pollfd fds[2] = {{master, POLLIN, 0}, {pidfd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    int ready = poll(fds, exited ? 1 : 2, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready == 0) {
      kill(pid, SIGKILL);
      BOOST_FAIL("hearth did not finish within 15 s on the terminal; it wrote:\n" + o.out);
    }
    if (!exited && fds[1].revents) {
      exited = true;
      close(slave);  // now the master reads what is left, then EIO
    }
    if (fds[0].revents) {
      char buf[4096];
      ssize_t got = read(master, buf, sizeof buf);
      if (got > 0) o.out.append(buf, static_cast<size_t>(got));
      else if (exited) break;
    }
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  close(master);
  close(pidfd);
  return o;
}

bool has_colour(const std::string& text) { return std::regex_search(text, kSgr); }

const std::regex kIsoUtc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

bool is_time(const json& v) { return v.is_string() && std::regex_match(v.get<std::string>(), kIsoUtc); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_output)

BOOST_AUTO_TEST_CASE(a_terminal_gets_colour_unless_term_is_dumb_no_color_is_set_or_color_is_never) {
  Repo repo;
  repo.workflow("two", kTwoSteps);
  Outcome coloured = on_terminal(repo, {"run", "two"}, {{"TERM", "xterm-256color"}});
  BOOST_REQUIRE_MESSAGE(coloured.exit_code == 1, shown(coloured));
  BOOST_TEST(has_colour(coloured.out), "a colour terminal gets colour:\n" << coloured.out);
  BOOST_TEST(contains(coloured.out, "checking"), coloured.out);

  Outcome dumb = on_terminal(repo, {"run", "two"}, {{"TERM", "dumb"}});
  BOOST_REQUIRE_MESSAGE(dumb.exit_code == 1, shown(dumb));
  BOOST_TEST(dumb.out.find('\x1b') == std::string::npos, "TERM=dumb gets no escape at all:\n" << dumb.out);
  BOOST_TEST(contains(dumb.out, "✗ check"), dumb.out);

  Outcome no_color = on_terminal(repo, {"run", "two"}, {{"TERM", "xterm-256color"}, {"NO_COLOR", "1"}});
  BOOST_TEST(!has_colour(no_color.out), "NO_COLOR:\n" << no_color.out);
  Outcome never = on_terminal(repo, {"--color=never", "run", "two"}, {{"TERM", "xterm-256color"}});
  BOOST_TEST(!has_colour(never.out), "--color=never:\n" << never.out);
  BOOST_TEST(contains(never.out, "✗ check"), never.out);
}

BOOST_AUTO_TEST_CASE(color_always_colours_a_pipe_and_a_bad_value_is_refused) {
  Repo repo;
  repo.workflow("two", kTwoSteps);
  Outcome piped = repo.hearth({"run", "two"}, {{"TERM", "xterm-256color"}});
  BOOST_TEST(!has_colour(piped.err), shown(piped));
  Outcome always = repo.hearth({"run", "two", "--color", "always"}, {{"TERM", "dumb"}});
  REQUIRE_EXIT(always, 1);
  BOOST_TEST(has_colour(always.err), shown(always));
  Outcome bad = repo.hearth({"--color=sometimes", "run", "two"});
  expect_stderr(bad, 2, {"auto,always,never"});
}

BOOST_AUTO_TEST_CASE(progress_and_step_output_go_to_stderr_and_stdout_holds_only_machine_output) {
  Repo repo;
  repo.workflow("two", kTwoSteps);
  Outcome o = repo.hearth({"run", "two"});
  REQUIRE_EXIT(o, 1);
  BOOST_TEST(o.out.empty(), "a run prints nothing a program would read on stdout: " << shown(o));
  BOOST_TEST(contains(o.err, "[build] compiling\n"), shown(o));
  BOOST_TEST(contains(o.err, "✗ check"), shown(o));
  BOOST_TEST(contains(o.err, "details: hearth show "), shown(o));

  o = repo.hearth({"run", "two", "--events", "jsonl"});
  REQUIRE_EXIT(o, 1);
  for (auto& line : lines_of(o.out)) BOOST_TEST(json::accept(line), "not an event on stdout: " << line);
  BOOST_TEST(contains(o.err, "[build] compiling\n"), shown(o));

  // A command's own result stays on stdout, alone.
  o = repo.hearth({"runs", "--json"});
  REQUIRE_EXIT(o, 0);
  BOOST_TEST(json::accept(o.out), shown(o));
  BOOST_TEST(o.err.empty(), shown(o));
}

BOOST_AUTO_TEST_CASE(json_times_have_one_format_for_runs_steps_and_attempts_and_steps_carry_needs) {
  Repo repo;
  repo.workflow("two", kTwoSteps);
  REQUIRE_EXIT(repo.hearth({"run", "two"}), 1);
  json runs = repo.runs();
  BOOST_REQUIRE(runs.size() == 1u);
  BOOST_TEST(is_time(runs[0]["started_at"]), runs.dump(2));
  BOOST_TEST(is_time(runs[0]["finished_at"]), runs.dump(2));

  json run = repo.show(runs[0]["id"].get<std::string>());
  BOOST_TEST(is_time(run["started_at"]), run.dump(2));
  for (const char* id : {"build", "check"}) {
    const json& step = step_of(run, id);
    BOOST_TEST(is_time(step["started_at"]), step.dump(2));
    BOOST_TEST(is_time(step["finished_at"]), step.dump(2));
    BOOST_REQUIRE(step["attempt_list"].size() == 1u);
    BOOST_TEST(is_time(step["attempt_list"][0]["started_at"]), step.dump(2));
    BOOST_TEST(is_time(step["attempt_list"][0]["finished_at"]), step.dump(2));
  }
  BOOST_TEST(step_of(run, "build")["needs"] == json::array());
  BOOST_TEST(step_of(run, "check")["needs"] == json::array({"build"}));
}

BOOST_AUTO_TEST_SUITE_END()
