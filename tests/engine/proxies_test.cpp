// API proxies through the real engine and the namespace sandbox: a workflow
// grants a step a proxy to a stand-in upstream on 127.0.0.1; the step's
// `curl` gets through where the rules allow, the credential reaches the
// upstream and nothing else (output, events, the run store), every request
// is an event, and a step not granted the proxy cannot reach it. Probes exit
// 66 when an escape WORKED.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "tests/engine/fixture.h"
#include "tests/support/upstream.h"

using namespace hearth::testing;

namespace {

const std::string kToken = "hearth-e2e-Zq7f3a9cTok";  // "7f3a9c" is grepped for inside

// The engine's environment holds the secret for the test's duration.
struct EngineSecret {
  EngineSecret() { setenv("HEARTH_E2E_API_TOKEN", kToken.c_str(), 1); }
  ~EngineSecret() { unsetenv("HEARTH_E2E_API_TOKEN"); }
};

std::string workflow_for(const Upstream& up, const std::string& extra_step = "") {
  return R"(
[sandbox]
network = "proxies"

[proxies.api]
upstream = ")" + up.url() + R"("
headers = { Authorization = "Bearer ${{ secrets.HEARTH_E2E_API_TOKEN }}" }
allow = [ { method = "GET", path = "/repos/**" } ]
deny = [ { path = "/repos/*/secrets/**" } ]
max-requests = 3

[[steps]]
id = "granted"
proxies = ["api"]
run = '''
curl -sS --max-time 20 "$HEARTH_PROXY_API/repos/o/r?page=2"; echo
curl -sS --max-time 20 -w '\ndenied=%{http_code}\n' "$HEARTH_PROXY_API/repos/o/secrets/list"
curl -sS --max-time 20 -o /dev/null -w 'post=%{http_code}\n' -X POST -d x "$HEARTH_PROXY_API/repos/o/r"
curl -sS --max-time 20 -o /dev/null -w 'second=%{http_code}\n' "$HEARTH_PROXY_API/repos/o/r/2"
curl -sS --max-time 20 -o /dev/null -w 'third=%{http_code}\n' "$HEARTH_PROXY_API/repos/o/r/3"
curl -sS --max-time 20 -w '\nfourth=%{http_code}\n' "$HEARTH_PROXY_API/repos/o/r/4"
n=$(env | grep -c 7f3a9c || true); echo "token fragments in the environment: $n"
'''
)" + extra_step;
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::vector<hearth::engine::EventRecord> of_type(const std::vector<hearth::engine::EventRecord>& events,
                                                 const std::string& type) {
  std::vector<hearth::engine::EventRecord> out;
  for (auto& e : events)
    if (e.type == type) out.push_back(e);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(run_proxies)

BOOST_AUTO_TEST_CASE(a_granted_step_uses_the_api_through_the_proxy_and_never_sees_the_token) {
  EngineSecret secret;
  Upstream up;
  TempRepo repo(workflow_for(up, R"(
[[steps]]
id = "ungranted"
run = '''
test -z "${HEARTH_PROXY_API:-}" || exit 66
curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:3129/repos/o/r && exit 66
curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:)" + std::to_string(up.port()) + R"(/repos/o/r && exit 66
echo unreachable
'''
)"));
  auto r = repo.run({}, 2);
  std::string out = repo.last_output().count("granted") ? repo.last_output().at("granted") : "";
  BOOST_TEST_MESSAGE(out);
  BOOST_TEST(r.outcome.status == hearth::RunStatus::succeeded);

  // The allowed request went through, with the credential added on the way.
  BOOST_TEST(contains(out, "\"path\":\"/repos/o/r\""), out);
  BOOST_TEST(contains(out, "\"authorization\":\"Bearer ***\""), out);
  BOOST_REQUIRE(up.received().size() == 3u);
  BOOST_TEST(up.received()[0]["authorization"] == "Bearer " + kToken);
  // Refusals name the rule; the budget stops the fourth allowed request.
  BOOST_TEST(contains(out, "\"rule\":\"deny[0]\""), out);
  BOOST_TEST(contains(out, "denied=403"), out);
  BOOST_TEST(contains(out, "post=403"), out);
  BOOST_TEST(contains(out, "second=200"), out);
  BOOST_TEST(contains(out, "third=200"), out);
  BOOST_TEST(contains(out, "\"rule\":\"max-requests 3\""), out);
  BOOST_TEST(contains(out, "fourth=403"), out);
  BOOST_TEST(contains(out, "token fragments in the environment: 0"), out);

  // Every request is an event of the step that made it, in the run store too.
  auto events = of_type(r.events, "proxy.request");
  BOOST_REQUIRE(events.size() == 6u);
  std::vector<int> statuses;
  for (auto& e : events) {
    BOOST_TEST(e.step_id == "granted");
    BOOST_TEST(e.data["proxy"] == "api");
    BOOST_TEST(e.data["attempt"] == 1);
    statuses.push_back(e.data["status"].get<int>());
  }
  BOOST_TEST(statuses == (std::vector<int>{200, 403, 403, 200, 200, 403}));
  BOOST_TEST(events[0].data["method"] == "GET");
  BOOST_TEST(events[0].data["path"] == "/repos/o/r");  // never the query
  BOOST_TEST(events[0].data["decision"] == "allowed");
  BOOST_TEST(events[0].data["rule"] == "allow[0]");
  BOOST_TEST(events[0].data["response_bytes"].get<int>() > 0);
  BOOST_TEST(events[1].data["rule"] == "deny[0]");
  BOOST_TEST(events[2].data["rule"] == "no allow rule");
  BOOST_TEST(events[2].data["request_bytes"] == 0);  // refused before anything was forwarded
  BOOST_TEST(events[5].data["decision"] == "over-budget");
  auto store = hearth::engine::Store::open(repo.state_path());
  BOOST_REQUIRE(store.ok());
  auto stored = (*store)->load_events(r.outcome.run_id);
  BOOST_REQUIRE(stored.ok());
  BOOST_TEST(of_type(*stored, "proxy.request").size() == 6u);

  // The step not granted the proxy had no way to it.
  BOOST_TEST(r.step("ungranted").status == StepStatus::succeeded);
  BOOST_TEST(contains(repo.last_output().at("ungranted"), "unreachable"));

  // The token is nowhere but at the upstream: not in output, events or the database.
  for (auto& [step, text] : repo.last_output()) BOOST_TEST(!contains(text, kToken), step);
  for (auto& e : r.events) BOOST_TEST(!contains(e.data.dump(), kToken), e.type);
  for (auto& e : r.events) BOOST_TEST(!contains(e.data.dump(), "Bearer"), e.type);
  for (const char* file : {"state.db", "state.db-wal"})
    BOOST_TEST(!contains(read_file(repo.root() / ".hearth" / file), kToken), file);
}

BOOST_AUTO_TEST_CASE(a_missing_secret_fails_the_step_naming_it) {
  Upstream up;
  unsetenv("HEARTH_E2E_API_TOKEN");
  TempRepo repo(workflow_for(up));
  auto r = repo.run();
  BOOST_TEST(r.outcome.status == hearth::RunStatus::failed);
  const std::string& reason = r.step("granted").reason;
  BOOST_TEST(contains(reason, "the secret HEARTH_E2E_API_TOKEN (header 'Authorization' of proxy 'api') is not set"), reason);
  BOOST_TEST(up.requests() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
