// From the step's side: requests crafted so that the proxy's rules read one
// path, method or header while the upstream acts on another. Each goes
// through the real proxy server over its Unix socket to a stand-in upstream
// on 127.0.0.1; a bypass is refused with 4xx and the upstream receives
// nothing for it.
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "tests/proxy/fixture.h"

using namespace hearth::testing;
using nlohmann::json;

namespace {

// A proxy named github whose upstream is "UPSTREAM" (see ProxyFixture::start),
// with the token in its Authorization header, and the TOML lines `rules`.
std::string github_proxy(const std::string& rules) {
  return "\n[proxies.github]\nupstream = \"UPSTREAM\"\nheaders = { Authorization = \"Bearer ${{ secrets.GH_TOKEN }}\" }\n" + rules;
}

// Everything readable but the secrets of every repository.
const std::string kRepos = github_proxy(R"(policy = "read-only"
deny = [ { path = "/repos/*/secret/**" } ]
)");

// Reads everywhere; deletes only under /tmp.
const std::string kDeleteTmp = github_proxy(R"(allow = [ { method = "GET", path = "/**" }, { method = "DELETE", path = "/tmp/**" } ]
)");

// A GET of `path` through the proxy github passes, and is the one request
// the upstream received, for `sent`.
void expect_passed_as(ProxyFixture& f, Upstream& up, const std::string& path, const std::string& sent) {
  auto ok = f.request("github", "GET", path);
  BOOST_TEST(status_of(ok) == 200, ok);
  auto got = up.requests_received();
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].path == sent);
}

std::string reason_of(const std::string& response) {
  return json::parse(body_of(response), nullptr, false).value("reason", "");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_paths_security)

BOOST_AUTO_TEST_CASE(a_deny_rule_holds_against_other_spellings_of_its_path) {
  Upstream up;
  ProxyFixture f;
  f.start(kRepos, up.url());
  const char* spellings[] = {
      "/repos/o/SECRET/x",      "/repos/o/Secret",           // the upstream ignores case
      "/repos/o/secret;a=b",    "/repos/o/secret;a=b/x",     // path parameters dropped before routing
      "/repos/o/..;/o/secret/x",                             // Tomcat's '..;'
      "/repos/o/secret%2Fx",    "/repos/o/secret%2fx",       // an escaped slash read as '/'
      "/repos/o/secret%5Cx",    "/repos/o/secret%00/x",      // backslash, NUL
      "/repos/o/%73ecret/x",    "/repos/o/x/%2e%2e/secret/y",
      "/repos/o/secret%3Bx/y",
  };
  for (const char* path : spellings) {
    auto r = f.request("github", "GET", path);
    int status = status_of(r);
    BOOST_TEST((status >= 400 && status < 500), path << " got " << r);
    BOOST_TEST(!reason_of(r).empty(), path << ": the refusal names its reason");
  }
  BOOST_TEST(up.requests() == 0, "the upstream received a request the rules deny");

  // What the rules allow still passes, and is sent as matched.
  expect_passed_as(f, up, "/repos/o/%70ublic/x", "/repos/o/public/x");
}

BOOST_AUTO_TEST_CASE(an_opt_in_to_escaped_slashes_and_parameters_keeps_deny_rules) {
  Upstream up;
  ProxyFixture f;
  f.start(std::string(kRepos) + "allow-encoded-slash = true\nallow-path-params = true\n", up.url());
  for (const char* path : {"/repos/o/secret%2Fx", "/repos/o/secret;a=b/x", "/repos/o/x;a=1/..;/secret/y"}) {
    auto r = f.request("github", "GET", path);
    int status = status_of(r);
    BOOST_TEST((status >= 400 && status < 500), path << " got " << r);
  }
  BOOST_TEST(up.requests() == 0);
  expect_passed_as(f, up, "/projects/group%2fname/issues;v=2", "/projects/group%2Fname/issues;v=2");
}

BOOST_AUTO_TEST_CASE(a_method_override_header_cannot_turn_a_read_into_a_delete) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());  // read-only
  for (const char* header : {"X-HTTP-Method-Override: DELETE", "x-http-method: delete", "X-Method-Override: PUT",
                             "X-HTTP-Method-Override: GET, DELETE", "X_HTTP_Method_Override: DELETE"}) {
    auto r = f.request("github", "GET", "/repos/o/r", "", std::string(header) + "\r\n");
    int status = status_of(r);
    BOOST_TEST((status == 403 || status == 400), header << " got " << r);
  }
  BOOST_TEST(up.requests() == 0, "the upstream received an overridden method the policy does not allow");
}

BOOST_AUTO_TEST_CASE(a_method_override_passes_where_the_policy_allows_that_method) {
  Upstream up;
  ProxyFixture f;
  f.start(kDeleteTmp, up.url());
  auto refused = f.request("github", "GET", "/repos/o/r", "", "X-HTTP-Method-Override: DELETE\r\n");
  BOOST_TEST(status_of(refused) == 403, refused);
  BOOST_TEST(reason_of(refused).find("DELETE") != std::string::npos, refused);
  BOOST_TEST(up.requests() == 0);
  auto ok = f.request("github", "GET", "/tmp/x", "", "X-HTTP-Method-Override: DELETE\r\n");
  BOOST_TEST(status_of(ok) == 200, ok);
  auto got = up.requests_received();
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].headers["x-http-method-override"] == "DELETE");
}

BOOST_AUTO_TEST_CASE(a_header_name_with_whitespace_is_refused_and_never_reaches_the_upstream) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  for (const char* header : {"Authorization : Bearer mine", "Authorization  : Bearer mine", "X-A b: 1"}) {
    auto r = f.request("github", "GET", "/repos/o/r", "", std::string(header) + "\r\n");
    BOOST_TEST(status_of(r) == 400, header << " got " << r);
    BOOST_TEST(reason_of(r).find("field name") != std::string::npos, r);
  }
  BOOST_TEST(up.requests() == 0, "the upstream received a request with a malformed header name");

  // A same-named header in another case is replaced: the upstream sees one
  // credential, the configured one.
  auto ok = f.request("github", "GET", "/repos/o/r", "", "AUTHORIZATION: Bearer mine\r\nauthorization: Bearer x\r\n");
  BOOST_TEST(status_of(ok) == 200, ok);
  auto got = up.requests_received();
  BOOST_REQUIRE(got.size() == 1u);
  int credentials = 0;
  for (auto& [name, value] : got[0].headers)
    if (name.find("authorization") != std::string::npos) ++credentials;
  BOOST_TEST(credentials == 1);
  BOOST_TEST(got[0].headers["authorization"] == "Bearer " + kToken);
}

BOOST_AUTO_TEST_SUITE_END()
