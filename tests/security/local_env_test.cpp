// What a `kind = "local"` step finds in its environment, seen by the step.
// The engine's environment holds credentials that are not the workflow's
// (model API keys, the webhook secret under `hearth serve`, the CI runner's
// own tokens); a local step is as hostile as a sandboxed one and must get none
// of them: only the documented base (engine/step_env.h) and what the workflow
// declares. The real binary runs the step.
#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"

using namespace hearth::testing;

namespace {

// Credentials an engine commonly holds in its environment, none declared by
// the workflow.
const std::map<std::string, std::string> kEngineCredentials = {
    {"ANTHROPIC_API_KEY", "sk-ant-marker-6d2a91-model-key"},
    {"OPENAI_API_KEY", "sk-marker-0c4e77-openai-key"},
    {"HEARTH_WEBHOOK_SECRET", "marker-8f13b2-webhook-secret"},
    {"ACTIONS_RUNTIME_TOKEN", "marker-29ad5e-runner-token"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(local_env_security)

BOOST_AUTO_TEST_CASE(a_local_step_gets_the_documented_base_and_its_workflows_env_never_the_engines_credentials) {
  TempDir repo;
  write_file(repo.path / ".hearth" / "workflows" / "probe.toml", R"(
name = "probe"
[sandbox]
kind = "local"
[env]
GREETING = "declared"
[[steps]]
id = "probe"
env = { STEP_ONLY = "mine" }
run = '''
env > step-env.txt
tr '\0' '\n' < /proc/self/environ >> step-env.txt
env
'''
)");
  auto env = kEngineCredentials;
  env["HOME"] = repo.path.string();
  env["LC_MESSAGES"] = "C";
  HearthProcess p({{"run", "probe"}, env, repo.path});
  auto r = p.finish(60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  std::string seen = "\n" + read_file(repo.path / "step-env.txt");
  for (auto& [name, value] : kEngineCredentials) {
    BOOST_TEST(!has(seen, value), "the step got the engine's " << name << ":\n" << seen);
    BOOST_TEST(!has(seen, "\n" + name + "="), "the step got the engine's " << name);
    BOOST_TEST(!has(r.out + r.err, value), "hearth printed the engine's " << name);
  }
  // What the step does get: the base the docs list, the workflow's env, HEARTH_*.
  BOOST_TEST(has(seen, "\nPATH="), seen);
  BOOST_TEST(has(seen, "\nHOME=" + repo.path.string() + "\n"), seen);
  BOOST_TEST(has(seen, "\nLC_MESSAGES=C\n"), seen);
  BOOST_TEST(has(seen, "\nGREETING=declared\n"), seen);
  BOOST_TEST(has(seen, "\nSTEP_ONLY=mine\n"), seen);
  BOOST_TEST(has(seen, "\nHEARTH_STEP_ID=probe\n"), seen);
}

BOOST_AUTO_TEST_SUITE_END()
