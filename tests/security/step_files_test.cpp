// Files a step can write that the engine reads back or trusts later, attacked
// from the step's side through the real engine and the namespace sandbox: its
// output file replaced by a link to the engine's own environment or to a host
// file, or by a FIFO; another step's output file; the agent's cwd file; the
// repository's .hearth/workflows when the state lives outside it.
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <boost/test/unit_test.hpp>

#include "engine/fixture.h"
#include "tests/support/model_server.h"
#include "tests/support/workflow_toml.h"

namespace {

using namespace hearth::testing;

// The longest "NAME=value" of this process's environment as the kernel shows
// it in /proc/self/environ (setenv() does not change that file): what a link
// to /proc/self/environ, followed by the engine, would leak.
std::string environ_marker() {
  std::string all = read_file("/proc/self/environ");
  std::string best;
  for (size_t b = 0; b < all.size();) {
    size_t e = all.find('\0', b);
    if (e == std::string::npos) e = all.size();
    std::string entry = all.substr(b, e - b);
    b = e + 1;
    // Only text JSON keeps as is, so a search of the stored JSON finds it.
    bool plain = std::all_of(entry.begin(), entry.end(), [](char c) { return c >= ' ' && c <= '~' && c != '"' && c != '\\'; });
    if (plain && entry.size() > best.size()) best = entry;
  }
  BOOST_REQUIRE_MESSAGE(best.size() >= 16, "this process's environment has no entry long enough to look for");
  return best;
}

const std::string kNamespaceHeader = "[sandbox]\nkind = \"namespace\"\nworkspace = \"repo\"\n\n";

// Everything the engine keeps or reports of a run, as one text.
std::string everything(const TempRepo& repo, const RunResult& r) {
  std::string all = read_file(repo.state_path()) + read_file(repo.state_path() + "-wal");
  for (auto& e : r.events) all += e.data.dump();
  for (auto& s : r.steps) all += s.reason + s.outputs.dump() + r.output(s.id);
  for (auto& [step, out] : repo.last_output()) all += out;
  return all;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(step_files_security)

BOOST_AUTO_TEST_CASE(an_output_file_linked_to_the_engines_environment_is_refused_and_leaks_nothing) {
  if (without_namespaces()) return;
  std::string marker = environ_marker();
  TempRepo repo(kNamespaceHeader + R"([[steps]]
id = "steal"
run = 'ln -sf /proc/self/environ "$HEARTH_OUTPUT"'
)");
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  const auto& step = r.step("steal");
  BOOST_TEST(step.status == StepStatus::failed);
  // Messages here never print what was read: on failure that would be the
  // test process's environment, in the test log.
  BOOST_TEST(step.outputs.empty(), "the step has outputs");
  // The error names the step, the file and why.
  BOOST_TEST(step.reason.find("step 'steal'") != std::string::npos, "the reason does not name the step");
  BOOST_TEST(step.reason.find("$HEARTH_OUTPUT") != std::string::npos, "the reason does not name the file");
  BOOST_TEST(step.reason.find("symlink") != std::string::npos, "the reason does not say it is a symlink");
  BOOST_TEST(everything(repo, r).find(marker) == std::string::npos, "the engine's environment leaked");
  repo.expect_secret_absent(r, marker);
}

BOOST_AUTO_TEST_CASE(an_output_file_linked_to_a_host_file_is_refused_and_leaks_nothing) {
  if (without_namespaces()) return;
  TempDir host;
  const std::string secret = "host-only-line-7c41e9 not visible to steps";
  write_file(host.path / "shadow", secret + "\n");
  TempRepo repo(kNamespaceHeader + R"([[steps]]
id = "steal"
run = 'ln -sf )" + (host.path / "shadow").string() + R"( "$HEARTH_OUTPUT"'
)");
  auto r = repo.run();
  const auto& step = r.step("steal");
  BOOST_TEST(step.status == StepStatus::failed);
  BOOST_TEST(step.reason.find("step 'steal'") != std::string::npos, step.reason);
  BOOST_TEST(step.reason.find("symlink") != std::string::npos, step.reason);
  BOOST_TEST(everything(repo, r).find("host-only-line-7c41e9") == std::string::npos, "the host file leaked");
}

// Runs the repository's workflow as `run_id` in a child process (so a hang
// fails the test instead of stalling the suite); false if the engine has not
// finished after a minute (it is killed then).
bool finishes_in_a_child(const TempRepo& repo, const std::string& run_id) {
  auto wf = repo.load();
  pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    auto store = hearth::engine::Store::open(repo.state_path());
    if (!store.ok()) _exit(3);
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto local = hearth::sandbox::make_local_sandbox();
    auto isolated = hearth::sandbox::make_namespace_sandbox();
    if (!isolated.ok()) _exit(4);
    hearth::engine::Engine engine(&loop, **store, *local);
    engine.add_sandbox(**isolated);
    hearth::StartOptions opts;
    opts.run_id = run_id;
    opts.repo = repo.root().string();
    if (!engine.start(wf, nlohmann::json::object(), opts, [](const hearth::RunResult&) {}).ok()) _exit(5);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  BOOST_REQUIRE(pidfd >= 0);
  pollfd p{pidfd, POLLIN, 0};
  int ready = poll(&p, 1, 60000);
  close(pidfd);
  if (ready != 1) ::kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  if (ready == 1) BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the engine's child ended with " << status);
  return ready == 1;
}

// The step as stored for `run_id`.
hearth::engine::StepRecord stored_step(const TempRepo& repo, const std::string& run_id, const std::string& id) {
  auto step = repo.stored_step(run_id, id);
  BOOST_REQUIRE_MESSAGE(step.has_value(), "no stored step " + id);
  return *step;
}

// A FIFO where the engine reads would block its loop for good with a plain
// open(2).
BOOST_AUTO_TEST_CASE(a_fifo_as_output_file_fails_the_step_without_blocking_the_engine) {
  if (without_namespaces()) return;
  TempRepo repo(kNamespaceHeader + R"([[steps]]
id = "jam"
run = 'rm -f "$HEARTH_OUTPUT"; mkfifo "$HEARTH_OUTPUT"'
)");
  BOOST_REQUIRE_MESSAGE(finishes_in_a_child(repo, "fifo-run-1"), "the engine blocked on the FIFO");
  auto step = stored_step(repo, "fifo-run-1", "jam");
  BOOST_TEST(step.status == StepStatus::failed);
  BOOST_TEST(step.reason.find("step 'jam'") != std::string::npos, step.reason);
  BOOST_TEST(step.reason.find("FIFO") != std::string::npos, step.reason);
}

// Step 'forge' runs before 'review' and writes where review's output file
// is (by its old shared name, and by every name it can see): review writes
// no outputs, so a later `if` must not see approved = true.
BOOST_AUTO_TEST_CASE(a_step_cannot_write_another_steps_output_file) {
  if (without_namespaces()) return;
  TempRepo repo(workflow_toml(
      {
          {.id = "forge",
           .run = "echo approved=true > /run/hearth/review.1.out || true\n"
                  "mkdir -p /run/hearth/review.1 && echo approved=true > /run/hearth/review.1/output || true\n"},
          {.id = "review", .needs = {"forge"}, .run = "true"},
          {.id = "deploy", .needs = {"review"}, .run = "touch deployed", .more = R"(if = "steps.review.outputs.approved == 'true'")"},
      },
      kNamespaceHeader));
  auto r = repo.run();
  BOOST_TEST(r.step("forge").status == StepStatus::succeeded, r.step("forge").reason);
  BOOST_TEST(r.step("review").status == StepStatus::succeeded, r.step("review").reason);
  BOOST_TEST(r.step("review").outputs.empty(), r.step("review").outputs.dump());
  BOOST_TEST(r.step("deploy").status == StepStatus::skipped);
  BOOST_TEST(!repo.exists("deployed"));
}

// Each attempt starts with an empty directory: what a failed attempt wrote
// is not read as the next attempt's outputs.
BOOST_AUTO_TEST_CASE(a_retry_sees_none_of_the_failed_attempts_files) {
  if (without_namespaces()) return;
  TempRepo repo(kNamespaceHeader + R"([[steps]]
id = "flaky"
retry = { attempts = 2, delay = "1ms" }
run = '''
ls -A /run/hearth >> seen.txt
echo --- >> seen.txt
if [ ! -e first-done ]; then
  touch first-done
  echo approved=true >> "$HEARTH_OUTPUT"
  touch /run/hearth/left-behind
  exit 1
fi
'''
)");
  auto r = repo.run();
  BOOST_TEST(r.step("flaky").status == StepStatus::succeeded, r.step("flaky").reason);
  BOOST_TEST(r.step("flaky").outputs.empty(), r.step("flaky").outputs.dump());
  BOOST_TEST(repo.read("seen.txt") == "---\n---\n");
}

// Runs the workflow at `rel` in `repo` with the state database in `state`,
// outside the repository (as `--state` and hearth ci's state-path do).
hearth::RunResult run_with_state_at(const TempRepo& repo, const std::string& rel, const TempDir& state) {
  auto loaded = hearth::workflows::load_workflow_file((repo.root() / rel).string());
  BOOST_REQUIRE(loaded.ok());
  auto store = hearth::engine::Store::open((state.path / "state.db").string());
  BOOST_REQUIRE(store.ok());
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto local = hearth::sandbox::make_local_sandbox();
  auto isolated = hearth::sandbox::make_namespace_sandbox();
  BOOST_REQUIRE(isolated.ok());
  std::optional<hearth::RunResult> outcome;
  {
    hearth::engine::Engine engine(&loop, **store, *local);
    engine.add_sandbox(**isolated);
    hearth::StartOptions opts;
    opts.repo = repo.root().string();
    auto id = engine.start(*loaded.workflow, nlohmann::json::object(), opts, [&](const hearth::RunResult& o) { outcome = o; });
    BOOST_REQUIRE_MESSAGE(id.ok(), (id.ok() ? "" : id.message()));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  BOOST_TEST(uv_loop_close(&loop) == 0);
  BOOST_REQUIRE(outcome.has_value());
  return *outcome;
}

// With the state outside the repository nothing hides .hearth: a step that
// rewrote .hearth/workflows (or renamed .hearth and put its own in place)
// chose what the next run executes, kind = "local" on the host included.
BOOST_AUTO_TEST_CASE(a_step_cannot_change_the_repositorys_workflows_when_the_state_lives_elsewhere) {
  if (without_namespaces()) return;
  TempDir state;
  TempRepo repo("");
  const std::string workflow = kNamespaceHeader + R"([[steps]]
id = "tamper"
run = '''
set +e
echo 'run = "id > /tmp/pwned"' >> .hearth/workflows/build.toml
mkdir -p .hearth/workflows/x && echo tampered > .hearth/workflows/x/new.toml
mv .hearth .hearth-moved && mkdir -p .hearth/workflows && echo '[sandbox]' > .hearth/workflows/build.toml
true
'''
)";
  repo.write(".hearth/workflows/build.toml", workflow);
  auto outcome = run_with_state_at(repo, ".hearth/workflows/build.toml", state);
  BOOST_TEST(outcome.status == RunStatus::succeeded, outcome.error);
  BOOST_TEST(repo.read(".hearth/workflows/build.toml") == workflow);
  BOOST_TEST(!repo.exists(".hearth/workflows/x"));
  BOOST_TEST(!repo.exists(".hearth-moved"));
}

// A repository without .hearth, the state elsewhere: a step that created
// .hearth/workflows (or a .hearth link into the workspace) would choose what
// the next `hearth run <name>` executes. The engine makes .hearth a real,
// read-only directory before the step starts; a link left there is refused.
BOOST_AUTO_TEST_CASE(a_step_cannot_plant_workflows_in_a_repository_without_dot_hearth) {
  if (without_namespaces()) return;
  TempDir state;
  TempRepo repo(kNamespaceHeader + R"([[steps]]
id = "plant"
run = '''
set +e
mkdir -p .hearth/workflows && echo '[sandbox]' > .hearth/workflows/evil.toml
mkdir -p planted/workflows && echo '[sandbox]' > planted/workflows/evil.toml
rmdir .hearth 2>/dev/null; ln -s planted .hearth
true
'''
)");
  auto outcome = run_with_state_at(repo, "workflow.toml", state);
  BOOST_TEST(outcome.status == RunStatus::succeeded, outcome.error);
  BOOST_TEST(!repo.exists(".hearth/workflows/evil.toml"));
  BOOST_TEST(fs::is_directory(fs::symlink_status(repo.root() / ".hearth")));
  // A link left there some other way is refused before any step runs.
  fs::remove_all(repo.root() / ".hearth");
  fs::create_directory_symlink("planted", repo.root() / ".hearth");
  auto refused = run_with_state_at(repo, "workflow.toml", state);
  BOOST_TEST(refused.status == RunStatus::failed);
  BOOST_TEST(fs::is_symlink(repo.root() / ".hearth"));
}

// The stand-in model server, and the engine pointed at it.
struct ModelEnv {
  ModelServer server;
  ScopedEnv env{{"ANTHROPIC_BASE_URL", server.url()}, {"ANTHROPIC_API_KEY", "test-key-0000"}};
};

const std::string kAgentWorkflow = kNamespaceHeader + R"([model]
name = "anthropic/claude-stand-in"

[[steps]]
id = "work"
prompt = "Look around."
)";

// What the model was sent in its n-th request.
std::string request_text(const ModelServer& server, size_t n) {
  auto requests = server.requests();
  BOOST_REQUIRE(n < requests.size());
  return requests[n].json()["messages"].dump();
}

// The agent's bash keeps its working directory through a file its EXIT trap
// writes in /run/hearth; a command that ends without the trap (exec) leaves
// whatever it planted there for the engine to read.
BOOST_AUTO_TEST_CASE(the_agents_cwd_file_linked_to_the_engines_environment_is_refused) {
  if (without_namespaces()) return;
  std::string marker = environ_marker();
  ModelEnv m;
  TempRepo repo(kAgentWorkflow);
  m.server.push(Reply::call(
      "c1", "bash",
      R"({"command": "for f in /run/hearth/work.1.cwd /run/hearth/cwd; do ln -sf /proc/self/environ $f; done; exec true"})"));
  m.server.push(Reply::call("c2", "bash", R"({"command": "pwd"})"));
  m.server.push(Reply::say("Done."));
  auto r = repo.run();
  BOOST_TEST(r.step("work").status == StepStatus::succeeded, r.step("work").reason);
  BOOST_REQUIRE_EQUAL(m.server.request_count(), 3u);
  std::string told = request_text(m.server, 1);
  BOOST_TEST(told.find(marker) == std::string::npos, "the model was sent the engine's environment");
  BOOST_TEST(told.find("symlink") != std::string::npos, "the model was not told the cwd file is a symlink");
  // The next command still starts in the workspace.
  BOOST_TEST(request_text(m.server, 2).find("/workspace\\n") != std::string::npos, request_text(m.server, 2));
  BOOST_TEST(everything(repo, r).find(marker) == std::string::npos, "the engine's environment leaked");
}

BOOST_AUTO_TEST_CASE(a_fifo_as_the_agents_cwd_file_does_not_block_the_engine) {
  if (without_namespaces()) return;
  ModelEnv m;
  TempRepo repo(kAgentWorkflow);
  m.server.push(Reply::call(
      "c1", "bash",
      R"({"command": "cd /run/hearth && rm -f work.1.cwd cwd && mkfifo work.1.cwd cwd; exec true"})"));
  m.server.push(Reply::say("Done."));
  BOOST_REQUIRE_MESSAGE(finishes_in_a_child(repo, "fifo-run-2"), "the engine blocked on the FIFO");
  BOOST_TEST(stored_step(repo, "fifo-run-2", "work").status == StepStatus::succeeded);
  BOOST_REQUIRE_EQUAL(m.server.request_count(), 2u);
  BOOST_TEST(request_text(m.server, 1).find("FIFO") != std::string::npos, request_text(m.server, 1));
}

// The agent's file tools run in the engine, outside the sandbox: they must
// not reach .hearth either.
BOOST_AUTO_TEST_CASE(an_agent_cannot_change_the_repositorys_workflows_when_the_state_lives_elsewhere) {
  if (without_namespaces()) return;
  ModelEnv m;
  TempDir state;
  TempRepo repo("");
  const std::string workflow = kAgentWorkflow;
  repo.write(".hearth/workflows/agent.toml", workflow);
  m.server.push(Reply::call("c1", "write",
                            R"({"path": ".hearth/workflows/agent.toml", "content": "[sandbox]\nkind = \"local\"\n"})"));
  m.server.push(Reply::call("c2", "write", R"({"path": "/workspace/.hearth/workflows/new.toml", "content": "x"})"));
  m.server.push(Reply::say("Done."));
  auto outcome = run_with_state_at(repo, ".hearth/workflows/agent.toml", state);
  BOOST_TEST(outcome.status == RunStatus::succeeded, outcome.error);
  BOOST_TEST(m.server.request_count() == 3u);
  BOOST_TEST(repo.read(".hearth/workflows/agent.toml") == workflow);
  BOOST_TEST(!repo.exists(".hearth/workflows/new.toml"));
}

BOOST_AUTO_TEST_SUITE_END()
