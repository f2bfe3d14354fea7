// The loader reads [proxies], [sandbox] network = "proxies" and egress, and a
// step's `proxies`; mistakes are reported at their place and nothing loads.
#include <boost/test/unit_test.hpp>

#include "workflows/loader.h"

using hearth::workflows::load_workflow_text;

namespace {

const std::string kProxies = R"([proxies.github]
upstream = "https://api.github.com"
headers = { Authorization = "Bearer ${{ secrets.GH_TOKEN }}" }
policy = "read-only"
max-requests = 50

[proxies.tracker]
upstream = "https://tracker.example.com/api"
allow = [ { method = "GET", path = "/issues/**" } ]
)";

// The first error of `text` loaded as "wf.toml" (the test fails when it loads).
std::string first_error(const std::string& text) {
  auto r = load_workflow_text(text, "wf.toml");
  BOOST_TEST(!r.workflow.has_value());
  return r.errors.empty() ? "" : r.errors[0];
}

}  // namespace

BOOST_AUTO_TEST_SUITE(loader_proxies)

BOOST_AUTO_TEST_CASE(proxies_egress_and_a_steps_grant_are_read) {
  auto r = load_workflow_text(kProxies + R"(
[sandbox]
network = "proxies"
egress = ["registry.npmjs.org:443"]

[[steps]]
id = "summarise"
run = "curl \"$HEARTH_PROXY_GITHUB/repos/o/r\""
proxies = ["github", "tracker"]

[[steps]]
id = "plain"
run = "true"
)",
                              "wf.toml");
  std::string all;
  for (auto& e : r.errors) all += e + "\n";
  BOOST_REQUIRE_MESSAGE(r.workflow.has_value(), all);
  const auto& wf = *r.workflow;
  BOOST_TEST(wf.sandbox.network == "proxies");
  BOOST_REQUIRE(wf.sandbox.egress.size() == 1u);
  BOOST_TEST(wf.sandbox.egress[0].text() == "registry.npmjs.org:443");
  BOOST_REQUIRE(wf.proxies.size() == 2u);
  BOOST_REQUIRE(wf.proxy("github") != nullptr);
  BOOST_TEST(wf.proxy("github")->upstream == "https://api.github.com");
  BOOST_TEST(*wf.proxy("github")->max_requests == 50u);
  BOOST_TEST(wf.proxy("github")->secret_names() == std::vector<std::string>{"GH_TOKEN"});
  BOOST_TEST(wf.proxy("gitlab") == nullptr);
  BOOST_TEST(wf.steps[0].proxies == (std::vector<std::string>{"github", "tracker"}));
  BOOST_TEST(wf.steps[1].proxies.empty());
}

BOOST_AUTO_TEST_CASE(an_unknown_proxy_gets_a_did_you_mean) {
  auto e = first_error(kProxies + "[sandbox]\nnetwork = \"proxies\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\nproxies = [\"githib\"]\n");
  BOOST_TEST(e == "wf.toml:15:12: step 's' uses the proxy 'githib', which is not defined (did you mean 'github'?)");
  e = first_error(kProxies + "[sandbox]\nnetwork = \"proxies\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\nproxies = [\"jira\"]\n");
  BOOST_TEST(e == "wf.toml:15:12: step 's' uses the proxy 'jira', which is not defined (defined: github, tracker)");
}

BOOST_AUTO_TEST_CASE(a_grant_needs_network_proxies) {
  auto e = first_error(kProxies + "[[steps]]\nid = \"s\"\nrun = \"true\"\nproxies = [\"github\"]\n");
  BOOST_TEST(e == "wf.toml:13:11: step 's' uses proxies, which need network = \"proxies\" in [sandbox]");
  e = first_error(kProxies + "[sandbox]\nnetwork = \"host\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\nproxies = [\"github\"]\n");
  BOOST_TEST(e == "wf.toml:15:11: step 's' uses proxies, which need network = \"proxies\" in [sandbox]");
}

BOOST_AUTO_TEST_CASE(egress_needs_network_proxies) {
  auto e = first_error("[sandbox]\negress = [\"registry.npmjs.org:443\"]\n[[steps]]\nid = \"s\"\nrun = \"true\"\n");
  BOOST_TEST(e == "wf.toml:2:10: 'egress' in [sandbox] applies to network = \"proxies\" (network is \"none\" by default)");
}

BOOST_AUTO_TEST_CASE(the_local_sandbox_refuses_proxies_and_egress) {
  auto e = first_error(kProxies + "[sandbox]\nkind = \"local\"\nnetwork = \"proxies\"\negress = [\"x.example:443\"]\n"
                                  "[[steps]]\nid = \"s\"\nrun = \"true\"\nproxies = [\"github\"]\n");
  BOOST_TEST(e.rfind("wf.toml:12:11: network = \"proxies\" in [sandbox] is not available under kind = \"local\"", 0) == 0, e);
  BOOST_TEST(e.find("use kind = \"namespace\"") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(bad_proxy_tables_are_reported_with_their_place) {
  auto e = first_error("[proxies.github]\nupstream = \"ftp://x\"\npolicy = \"any\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\n");
  BOOST_TEST(e == "wf.toml:2:12: 'upstream' in [proxies.github]: the scheme must be https (or http), not 'ftp'");
  e = first_error("[proxies.github]\nupstream = \"https://x\"\npolicy = \"any\"\nmax-requests = 0\n[[steps]]\nid = \"s\"\nrun = \"true\"\n");
  BOOST_TEST(e == "wf.toml:4:16: 'max-requests' in [proxies.github] must be at least 1");
  e = first_error("[proxies.github]\nupstream = \"https://x\"\npolicy = \"any\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\nproxys = [\"github\"]\n");
  BOOST_TEST(e == "wf.toml:7:1: unknown key 'proxys' in step 's' (did you mean 'proxies'?)");
  e = first_error("[sandbox]\nnetwork = \"proxy\"\n[[steps]]\nid = \"s\"\nrun = \"true\"\n");
  BOOST_TEST(e.find("'network' in [sandbox] must be one of 'none', 'proxies', 'host', not 'proxy'") != std::string::npos, e);
}

BOOST_AUTO_TEST_SUITE_END()
