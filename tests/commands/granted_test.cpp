// Granted commands through the real engine: a step in the namespace sandbox
// calls host programs through hearth-shim and the broker, and the secrets
// those programs hold never reach the step, its output, the events or the
// store. Real git pushes to a stand-in server on 127.0.0.1 that wants a
// token only the broker has.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>

#include "engine/fixture.h"
#include "tests/support/git_push.h"
#include "tests/support/workflow_toml.h"

namespace {

using namespace hearth::testing;

const std::string kToken = "tok_S3cr3t-granted-9f2c71";

// A host program outside everything the sandbox can see, that prints what it
// was given: its arguments, its secret, and whether the engine's own
// environment reached it.
std::string host_tool(const TempDir& dir) {
  auto path = dir.path / "host-bin" / "tool";
  write_file(path, R"(#!/bin/bash
echo "args:$*"
echo "token:$TOOL_TOKEN"
echo "engine-env:${HEARTH_TEST_ENGINE_ONLY:-absent}"
echo "label:$TOOL_LABEL"
[ "$1" = fail ] && { echo "failing with $TOOL_TOKEN" >&2; exit 7; }
[ "$1" = stdin ] && { cat; }
exit 0
)");
  ::chmod(path.c_str(), 0755);
  return path.string();
}

struct SecretEnv : hearth::testing::ScopedEnv {
  SecretEnv() : ScopedEnv({{"TOOL_TOKEN", kToken}, {"HEARTH_TEST_ENGINE_ONLY", "engine-only-value"}}) {}
};

std::string workflow_with_tool(const std::string& tool, const std::string& kind, const std::string& run) {
  return R"([sandbox]
kind = ")" + kind + R"("

[commands.tool]
exec = ")" + tool + R"("
secrets = ["TOOL_TOKEN"]
env = { TOOL_LABEL = "${{ inputs.label }}" }
allow = ["hello *", "fail", "stdin"]
deny = ["hello --evil *"]

[inputs]
label = { type = "string", default = "from-input" }

[[steps]]
id = "use"
commands = ["tool"]
run = '''
)" + run + R"(
'''

[[steps]]
id = "plain"
run = 'env > plain-env.txt; tool hello 2>&1 || echo "exit=$?"'
)";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(granted_commands)

BOOST_AUTO_TEST_CASE(a_granted_command_runs_on_the_host_and_its_secret_never_reaches_the_step) {
  SecretEnv env;
  TempDir host;
  std::string tool = host_tool(host);
  TempRepo repo(workflow_with_tool(tool, "namespace", R"(
tool hello "two words" > out.txt
env > step-env.txt
echo "$TOOL_TOKEN" > direct.txt
tool hello --evil x || echo "denied=$?" >> out.txt
tool goodbye || echo "ungranted=$?" >> out.txt
tool fail || echo "failed=$?" >> out.txt
echo piped | tool stdin >> out.txt
cat out.txt
)"));
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  std::string out = repo.read("out.txt");
  BOOST_TEST(out.find("args:hello two words") != std::string::npos, out);
  BOOST_TEST(out.find("token:***") != std::string::npos, out);  // the program had it; the step sees ***
  BOOST_TEST(out.find("engine-env:absent") != std::string::npos, out);
  BOOST_TEST(out.find("label:from-input") != std::string::npos, out);
  BOOST_TEST(out.find("denied=126") != std::string::npos, out);
  BOOST_TEST(out.find("ungranted=126") != std::string::npos, out);
  BOOST_TEST(out.find("failed=7") != std::string::npos, out);
  BOOST_TEST(out.find("piped") != std::string::npos, out);
  BOOST_TEST(repo.read("direct.txt") == "\n");
  std::string step_env = repo.read("step-env.txt");
  BOOST_TEST(step_env.find(kToken) == std::string::npos);
  BOOST_TEST(step_env.find("TOOL_TOKEN") == std::string::npos);
  // A step without the grant has no `tool` at all.
  BOOST_TEST(repo.read("plain-env.txt").find("hearth-grants") == std::string::npos);
  BOOST_TEST(r.output("plain").find("exit=127") != std::string::npos, r.output("plain"));
  // Every call is an event with its argv; refusals name the rule.
  int started = 0, finished = 0;
  bool refusal_named = false;
  for (auto& e : r.events) {
    if (e.type == "command.started") ++started;
    if (e.type == "command.finished") ++finished;
    if (e.type == "command.started" && !e.data["allowed"].get<bool>())
      refusal_named = refusal_named || e.data["rule"].get<std::string>().find("--evil") != std::string::npos;
  }
  BOOST_TEST(started == 5);
  BOOST_TEST(finished == 3);  // refusals end where they start
  BOOST_TEST(refusal_named);
  // The journal holds each call; nothing stored anywhere holds the secret.
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_REQUIRE(store.ok());
  auto calls = (*store)->load_calls(r.outcome.run_id);
  BOOST_REQUIRE(calls.ok());
  BOOST_TEST(calls->size() == 5u);
  BOOST_TEST((*calls)[0].argv == (std::vector<std::string>{"tool", "hello", "two words"}));
  BOOST_TEST((*calls)[0].outcome == "exited");
  BOOST_TEST((*calls)[0].output_tail.find("token:***") != std::string::npos);
  store->reset();
  repo.expect_secret_absent(r, kToken);
}

BOOST_AUTO_TEST_CASE(under_the_local_backend_secrets_are_removed_from_the_steps_environment) {
  SecretEnv env;
  TempDir host;
  std::string tool = host_tool(host);
  TempRepo repo(workflow_with_tool(tool, "local", R"(
env > step-env.txt
tool hello local > out.txt
)"));
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("step-env.txt").find(kToken) == std::string::npos);
  BOOST_TEST(repo.read("step-env.txt").find("HEARTH_TEST_ENGINE_ONLY") == std::string::npos);  // local: never the engine's env
  BOOST_TEST(repo.read("out.txt").find("token:***") != std::string::npos, repo.read("out.txt"));
}

BOOST_AUTO_TEST_CASE(a_missing_secret_or_program_fails_the_step_naming_it) {
  TempDir host;
  std::string tool = host_tool(host);
  unsetenv("TOOL_TOKEN");
  TempRepo repo(workflow_with_tool(tool, "namespace", "tool hello"));
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("use").reason.find("secret 'TOOL_TOKEN' is not set") != std::string::npos, r.step("use").reason);
  BOOST_TEST(r.step("use").reason.find("[commands.tool]") != std::string::npos, r.step("use").reason);
  setenv("TOOL_TOKEN", "abc", 1);
  auto shorter = repo.run();
  BOOST_TEST(shorter.step("use").reason.find("TOOL_TOKEN") != std::string::npos, shorter.step("use").reason);
  BOOST_TEST(shorter.step("use").reason.find("abc") == std::string::npos, shorter.step("use").reason);
  unsetenv("TOOL_TOKEN");
}

BOOST_AUTO_TEST_CASE(real_git_pushes_with_a_credential_only_the_broker_holds) {
  TempDir host;
  // The server accepts a push only from a git that holds the token.
  PushRemote remote(host.path / "served", "x-access-token", kToken);
  TempRepo repo(R"([sandbox]
kind = "namespace"
workspace = "checkout"

)" + remote.grant() + R"(
[[steps]]
id = "change"
commands = ["git"]
run = '''
echo changed >> README
/usr/bin/git -c user.name=bot -c user.email=bot@example.com commit -qam "from the sandbox"
git push origin HEAD
git push --force origin HEAD || echo "force=$?"
git push origin HEAD:refs/heads/other || echo "other=$?"
echo "push-token=${PUSH_TOKEN:-absent}"
'''
)");
  commit_checkout(repo.root());
  RunResult r;
  {
    ScopedEnv token({{"PUSH_TOKEN", kToken}});
    r = repo.run();
  }
  std::string out = r.succeeded_output("change");
  BOOST_TEST(remote.log() == "from the sandbox\nfirst\n");
  BOOST_TEST(remote.server().authorized_requests() > 0);
  BOOST_TEST(out.find("force=126") != std::string::npos, out);
  BOOST_TEST(out.find("other=126") != std::string::npos, out);
  BOOST_TEST(out.find("push-token=absent") != std::string::npos, out);
  repo.expect_secret_absent(r, kToken);
}

BOOST_AUTO_TEST_CASE(a_call_cut_short_by_a_crash_is_reported_as_outcome_unknown_and_not_repeated) {
  TempDir host;
  auto marker = host.path / "calls";
  auto tool = host.path / "slow";
  TempRepo repo(workflow_toml({{.id = "post",
                                .run = "echo $$ > post.pid; slow comment 42",
                                .more = R"(commands = ["slow"]
retry = { attempts = 3, on = ["failure", "interrupted"] })"}},
                              sandbox_head("local") + command_toml("slow", tool.string(), {"comment *"})));
  // The program leads its own process group; the pid file lets the test end it.
  write_file(tool, "#!/bin/sh\necho $$ > '" + (repo.root() / "slow.pid").string() + "'\necho called >> '" +
                       marker.string() + "'\nsleep 30\n");
  ::chmod(tool.c_str(), 0755);
  repo.crash_when("crashed-call", [&] { return read_file(marker) == "called\n"; });
  auto r = repo.resume("crashed-call");
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(read_file(marker) == "called\n");  // never silently repeated
  std::string reason = r.step("post").reason;
  BOOST_TEST(reason.find("outcome unknown") != std::string::npos, reason);
  BOOST_TEST(reason.find("slow comment 42") != std::string::npos, reason);
  bool reported = false;
  for (auto& e : r.events)
    if (e.type == "command.unknown") reported = e.data["argv"] == nlohmann::json::array({"slow", "comment", "42"});
  BOOST_TEST(reported);
}

BOOST_AUTO_TEST_SUITE_END()
