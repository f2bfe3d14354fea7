// The engine reads a workflow's declared secrets once, when the run starts,
// and every attempt takes them from there. Were a later attempt to read the
// environment again, a value set in between (a rotated token, a variable an
// embedding program changed) would be sent by a proxy without being in the
// run's redaction set: an upstream that echoes it (or a step that makes it
// echo it) brings it back to the step in clear, and from there to the
// output, the events and the store.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>

#include "engine/fixture.h"
#include "sandbox/sandbox.h"
#include "tests/support/model_server.h"
#include "tests/support/upstream.h"
#include "tests/support/workflow_toml.h"

namespace {

using namespace hearth::testing;

const std::string kAtStart = "tok_S3cr3t-at-start-5a0c2e";
const std::string kLater = "tok_S3cr3t-set-later-c81d47";

// `head`, then a step "first" that does nothing and a step "second" after it
// that runs `run`, with `more` (what it is granted).
std::string two_steps(const std::string& run, const std::string& more, const std::string& head) {
  return workflow_toml({{.id = "first", .run = "true"}, {.id = "second", .needs = {"first"}, .run = run, .more = more}}, head);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(secrets_at_start_security)

BOOST_AUTO_TEST_CASE(a_secret_changed_after_the_run_started_never_comes_back_through_a_proxy_unmasked) {
  if (without_namespaces()) return;
  // An upstream that echoes the request's Authorization header in its answer.
  Upstream up;
  TempRepo repo(two_steps(R"(curl -sS --max-time 20 "$HEARTH_PROXY_API/repos/o/r"; echo)", R"(proxies = ["api"])",
                          R"([sandbox]
network = "proxies"

[proxies.api]
upstream = ")" + up.url() + R"("
headers = { Authorization = "Bearer ${{ secrets.ROTATING_TOKEN }}" }
allow = [ { method = "GET", path = "/repos/**" } ])"));
  ScopedEnv env{{"ROTATING_TOKEN", kAtStart}};
  // Right after the run started, before the second step is prepared.
  auto r = repo.run(nlohmann::json::object(), 0, [](auto&, auto&, const std::string&) {
    ::setenv("ROTATING_TOKEN", kLater.c_str(), 1);
  });
  std::string out = r.succeeded_output("second");
  BOOST_TEST(has(out, "Bearer ***"), out);
  repo.expect_secret_absent(r, kLater);
  repo.expect_secret_absent(r, kAtStart);
}

BOOST_AUTO_TEST_CASE(a_secret_unset_after_the_run_started_is_still_the_one_read_at_start) {
  TempDir host;
  auto tool = host.path / "tool";
  write_file(tool, "#!/bin/sh\n[ -n \"$ROTATING_TOKEN\" ] && echo has-token\n");
  ::chmod(tool.c_str(), 0755);
  TempRepo repo(two_steps("tool show", R"(commands = ["tool"])", R"([commands.tool]
exec = ")" + tool.string() + R"("
secrets = ["ROTATING_TOKEN"]
allow = ["show"])"));
  ScopedEnv env{{"ROTATING_TOKEN", kAtStart}};
  auto r = repo.run(nlohmann::json::object(), 0, [](auto&, auto&, const std::string&) { ::unsetenv("ROTATING_TOKEN"); });
  std::string out = r.succeeded_output("second");
  BOOST_TEST(has(out, "has-token"), out);
}

// The model's API key is read with the declared secrets. Read again when the
// first agent step starts, a key an embedding program or a rotation changed
// in between would be used without the run having seen it at start (and a
// removed one would fail the step); either way the key must never reach a
// step's environment, and from there the output, the events or the store.
const std::string kModelWorkflow = local_agent_head() + R"([[steps]]
id = "first"
run = "env"

[[steps]]
id = "agent"
needs = ["first"]
prompt = "Look around."
)";

// Runs kModelWorkflow against the stand-in model; `later` changes the
// environment right after the run started, before the agent step.
void expect_model_key_read_at_start(const std::function<void()>& later) {
  ModelServer server;
  // The agent's bash prints its environment into the conversation.
  server.push(Reply::call("c1", "bash", R"({"command": "env"})"));
  server.push(Reply::say("Done."));
  TempRepo repo(kModelWorkflow);
  ScopedEnv env{{"ANTHROPIC_BASE_URL", server.url()}, {"ANTHROPIC_API_KEY", kAtStart}};
  auto r = repo.run(nlohmann::json::object(), 0, [&](auto&, auto&, const std::string&) { later(); });
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, r.step("agent").reason);
  auto requests = server.requests();
  BOOST_TEST(requests.size() == 2u);
  for (auto& q : requests) {
    auto key = q.headers.find("x-api-key");
    BOOST_TEST((key != q.headers.end() && key->second == kAtStart), "the model was sent another key than the one read at start");
  }
  repo.expect_secret_absent(r, kAtStart);
  repo.expect_secret_absent(r, kLater);
}

BOOST_AUTO_TEST_CASE(a_model_key_changed_after_the_run_started_is_not_the_one_the_agent_step_uses) {
  expect_model_key_read_at_start([] { ::setenv("ANTHROPIC_API_KEY", kLater.c_str(), 1); });
}

BOOST_AUTO_TEST_CASE(a_model_key_removed_after_the_run_started_is_still_the_one_read_at_start) {
  expect_model_key_read_at_start([] { ::unsetenv("ANTHROPIC_API_KEY"); });
}

BOOST_AUTO_TEST_SUITE_END()
