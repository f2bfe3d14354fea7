// The proxy syntax ([proxies], [sandbox] egress, a step's proxies) and the
// pure parts of the policy: globs, path normalization, sizes, rates, the
// token bucket and the deny-then-allow decision.
#include <boost/test/unit_test.hpp>

#include "workflows/proxies.h"

using namespace hearth::proxy;
using namespace hearth::workflows;

namespace {

const char* kExample = R"(
[proxies.github]
upstream = "https://api.github.com/"
headers = { Authorization = "Bearer ${{ secrets.GH_TOKEN }}", X-Api-Version = "2022-11-28" }
policy = "read-only"
rate = "60/min"

[proxies.tracker]
upstream = "https://tracker.example.com/api"
allow = [ { method = "GET", path = "/issues/**" },
          { method = "POST", path = "/issues/*/comments", body-max = "16KiB" } ]
deny  = [ { path = "/admin/**" } ]

[sandbox]
network = "proxies"
egress = ["registry.npmjs.org:443", "[::1]:8443"]
)";

// The one error of `text`, which must start with "wf.toml:<where>: " and
// contain `what`.
void fails_at(const std::string& text, const std::string& where, const std::string& what) {
  auto r = parse_proxy_config_text(text, "wf.toml");
  BOOST_REQUIRE_MESSAGE(!r.ok(), "parsed, but should fail with " << what);
  BOOST_TEST_MESSAGE(r.message());
  BOOST_TEST(r.message().rfind("wf.toml:" + where + ": ", 0) == 0, r.message());
  BOOST_TEST(r.message().find(what) != std::string::npos, r.message());
}

std::string proxy_with(const std::string& body) {
  return "[proxies.p]\nupstream = \"https://x.example\"\n" + body + "\n";
}

Verdict decide_for(const ProxyDef& d, const std::string& method, const std::string& path, const std::string& body = "") {
  return decide(d.allow, d.deny, method, path, body);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_config)

BOOST_AUTO_TEST_CASE(the_issue_example_parses_into_proxies_and_egress) {
  auto r = parse_proxy_config_text(kExample, "wf.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
  BOOST_REQUIRE(r->proxies.size() == 2u);
  const ProxyDef& gh = r->proxies[0];
  BOOST_TEST(gh.name == "github");
  BOOST_TEST(gh.upstream == "https://api.github.com");  // trailing slash dropped
  BOOST_REQUIRE(gh.headers.size() == 2u);
  BOOST_TEST(gh.headers[0].name == "Authorization");
  BOOST_TEST(gh.headers[0].value == "Bearer ${{ secrets.GH_TOKEN }}");
  BOOST_TEST(gh.secret_names() == std::vector<std::string>{"GH_TOKEN"});
  BOOST_TEST(gh.preset == "read-only");
  BOOST_REQUIRE(gh.rate.has_value());
  BOOST_TEST(gh.rate->count == 60u);
  BOOST_TEST(gh.rate->per.count() == 60000);
  const ProxyDef& tr = *r->find("tracker");
  BOOST_REQUIRE(tr.allow.size() == 2u);
  BOOST_TEST(tr.allow[1].methods == std::vector<std::string>{"POST"});
  BOOST_TEST(tr.allow[1].path == "/issues/*/comments");
  BOOST_TEST(*tr.allow[1].body_max == 16384u);
  BOOST_TEST(tr.allow[1].label == "allow[1]");
  BOOST_TEST(tr.allow[1].text == "{ method = \"POST\", path = \"/issues/*/comments\", body-max = \"16KiB\" }");
  BOOST_TEST(tr.allow[1].at.line == 11);
  BOOST_TEST(tr.deny[0].path == "/admin/**");
  BOOST_REQUIRE(r->egress.size() == 2u);
  BOOST_TEST(r->egress[0].text() == "registry.npmjs.org:443");
  BOOST_TEST(r->egress[1].host == "::1");
  BOOST_TEST(r->egress[1].text() == "[::1]:8443");
  BOOST_TEST(env_name("my-api") == "HEARTH_PROXY_MY_API");
}

BOOST_AUTO_TEST_CASE(errors_name_line_and_column) {
  fails_at(proxy_with("policy = \"read-only\"\nallow = [ { method = \"GET\", body_max = \"1K\" } ]"), "4:29",
           "unknown key 'body_max' in allow[0] of [proxies.p] (did you mean 'body-max'?)");
  fails_at(proxy_with("allow = [ { method = \"G ET\" } ]"), "3:22", "'G ET' in allow[0] of [proxies.p] is not an HTTP method");
  fails_at(proxy_with("allow = [ { path = \"/issues**\" } ]"), "3:20", "'**' stands for whole segments only");
  fails_at(proxy_with("allow = [ { path = \"issues\" } ]"), "3:20", "a path glob starts with '/'");
  fails_at(proxy_with("allow = [ { path = \"/a\", body = \"(unclosed\" } ]"), "3:33", "not a valid regular expression");
  fails_at(proxy_with("allow = [ { path = \"/a\", body-max = \"16 parsecs\" } ]"), "3:37", "unknown unit");
  fails_at(proxy_with("policy = \"any\"\nrate = \"60/fortnight\""), "4:8", "a rate is N/sec, N/min or N/hour");
  fails_at(proxy_with("policy = \"read-mostly\""), "3:10", "must be \"read-only\" (GET and HEAD) or \"any\"");
  fails_at(proxy_with("policy = \"any\"\ndeny = [ { rate = \"1/min\" } ]"), "4:12", "unknown key 'rate' in deny[0]");
  fails_at(proxy_with("policy = \"any\"\ndeny = [ { } ]"), "4:10", "is empty and would refuse everything");
  fails_at(proxy_with(""), "1:1", "[proxies.p] allows nothing");
  fails_at("[proxies.p]\nupstream = \"ftp://x.example\"\npolicy = \"any\"\n", "2:12", "the scheme must be https");
  fails_at("[proxies.p]\nupstream = \"https://user:pw@x.example\"\npolicy = \"any\"\n", "2:12", "holds no credentials");
  fails_at("[proxies.p]\npolicy = \"any\"\n", "1:1", "needs an upstream URL");
  fails_at(proxy_with("policy = \"any\"\nheaders = { Authorization = \"Bearer ${{ inputs.token }}\" }"), "4:29",
           "only ${{ secrets.NAME }} can be interpolated");
  fails_at(proxy_with("policy = \"any\"\nheaders = { X = \"${{ secrets.A \" }"), "4:17", "is not closed");
  fails_at(proxy_with("policy = \"any\"\nheaders = { Host = \"evil\" }"), "4:13", "set by the proxy itself");
  fails_at("[proxies.\"1x\"]\nupstream = \"https://x.example\"\npolicy = \"any\"\n", "1:10", "must start with a letter");
  fails_at("[proxies.a-b]\nupstream = \"https://x\"\npolicy = \"any\"\n[proxies.a_b]\nupstream = \"https://y\"\npolicy = \"any\"\n",
           "4:10", "would both be HEARTH_PROXY_A_B");
  fails_at("[sandbox]\nnetwork = \"proxies\"\negress = [\"registry.npmjs.org\"]\n", "3:11", "is not a host:port pair");
  fails_at("[sandbox]\nnetwork = \"proxies\"\negress = [\"*.npmjs.org:443\"]\n", "3:11", "wildcards");
  fails_at("[sandbox]\negress = [\"registry.npmjs.org:443\"]\n", "2:10", "applies to network = \"proxies\"");
  fails_at("[proxies]\nupstream = 1\n", "2:12", "[proxies.upstream] must be a table");
  fails_at(proxy_with("policy = \"any\"\nmax-requests = 0"), "4:16", "'max-requests' in [proxies.p] must be at least 1");
  fails_at(proxy_with("policy = \"any\"\nmax-requests = \"5\""), "4:16", "must be a whole number of requests");
  fails_at("proxies = [ 1 ]\n", "1:11", "[proxies] must be a table");
  fails_at("[proxies.p\n", "1:11", "");  // TOML syntax: toml++'s own message, with the place
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_in_file_order) {
  auto r = parse_proxy_config_text(proxy_with("policy = \"nope\"\nrate = \"x\"\nallow = [ 1 ]"), "wf.toml");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.message().find("wf.toml:3:10:") < r.message().find("wf.toml:4:8:"));
  BOOST_TEST(r.message().find("wf.toml:4:8:") < r.message().find("wf.toml:5:11:"));
}

BOOST_AUTO_TEST_CASE(a_steps_proxies_are_checked_against_the_definitions) {
  toml::table doc = toml::parse(std::string(kExample) + R"(
[[steps]]
id = "s"
proxies = ["github", "githib", "github"]
)");
  auto cfg = parse_proxy_config(doc);
  BOOST_REQUIRE(cfg.ok());
  std::vector<LoadError> errors;
  auto* step = doc["steps"].as_array()->get(0)->as_table();
  auto names = parse_step_proxies(*step->get("proxies"), cfg.config, "step 's'", errors);
  BOOST_TEST(names == std::vector<std::string>{"github"});
  BOOST_REQUIRE(errors.size() == 2u);
  BOOST_TEST(errors[0].message == "step 's' uses the proxy 'githib', which is not defined (defined: github, tracker)");
  BOOST_TEST(errors[0].at.line == 20);
  BOOST_TEST(errors[0].at.column == 22);
  BOOST_TEST(errors[1].message == "step 's' lists the proxy 'github' twice");

  cfg.config.network = "none";
  errors.clear();
  parse_step_proxies(*step->get("proxies"), cfg.config, "step 's'", errors);
  BOOST_TEST(errors.at(0).message == "step 's' uses proxies, which need network = \"proxies\" in [sandbox]");
}

BOOST_AUTO_TEST_CASE(headers_render_with_secret_values_and_errors_never_show_them) {
  auto cfg = parse_proxy_config_text(kExample, "wf.toml");
  BOOST_REQUIRE(cfg.ok());
  const ProxyDef& gh = cfg->proxies[0];
  auto ok = render_headers(gh, [](const std::string& n) -> std::optional<std::string> {
    return n == "GH_TOKEN" ? std::optional<std::string>("tok-123456") : std::nullopt;
  });
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST((*ok)[0].second == "Bearer tok-123456");
  BOOST_TEST((*ok)[1].second == "2022-11-28");
  auto missing = render_headers(gh, [](const std::string&) { return std::optional<std::string>(); });
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.message() == "the secret GH_TOKEN (header 'Authorization' of proxy 'github') is not set");
  auto broken = render_headers(gh, [](const std::string&) { return std::optional<std::string>("tok\r\nX-Evil: 1"); });
  BOOST_REQUIRE(!broken.ok());
  BOOST_TEST(broken.message().find("line break") != std::string::npos);
  BOOST_TEST(broken.message().find("X-Evil") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(globs_match_whole_segments) {
  struct Case {
    const char* pattern;
    const char* path;
    bool match;
  } cases[] = {
      {"/issues/**", "/issues", true},           {"/issues/**", "/issues/", true},
      {"/issues/**", "/issues/1/comments", true}, {"/issues/**", "/issuesX", false},
      {"/issues/*", "/issues/1", true},           {"/issues/*", "/issues/", false},
      {"/issues/*", "/issues/1/2", false},        {"/issues/*/comments", "/issues/7/comments", true},
      {"/issues/*/comments", "/issues/7/8/comments", false},
      {"/**/comments", "/a/b/c/comments", true},  {"/**/comments", "/comments", true},
      {"/repos/*/*/releases/v*", "/repos/o/r/releases/v1.2", true},
      {"/repos/*/*/releases/v*", "/repos/o/r/releases/1.2", false},
      {"/a/**/b/**/c", "/a/x/b/y/z/c", true},     {"/a/**/b/**/c", "/a/x/y/c", false},
      {"/", "/", true},                           {"/", "/a", false},
      {"/**", "/", true},                         {"/Admin", "/admin", false},
      {"/*.json", "/data.json", true},            {"/*.json", "/data.jsonx", false},
  };
  for (auto& c : cases) BOOST_TEST(glob_match(c.pattern, c.path) == c.match, c.pattern << " vs " << c.path);
}

BOOST_AUTO_TEST_CASE(paths_are_normalized_or_refused) {
  auto norm = [](std::string_view raw, PathOptions o = {}) { return normalize_path(raw, o)->path; };
  BOOST_TEST(norm("/%61dmin/%7Eme") == "/admin/~me");
  BOOST_TEST(norm("/a%20b/%c3%a9") == "/a%20b/%C3%A9");  // escapes kept, hex in upper case
  BOOST_TEST(norm("/issues/") == "/issues/");
  BOOST_TEST(norm("/caf\xc3\xa9") == "/caf%C3%A9");
  BOOST_TEST(norm("/a\"b<c>{d}|e^f`g") == "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g");
  BOOST_TEST(norm("/x:@!$&'()*+,=y") == "/x:@!$&'()*+,=y");
  for (const char* bad : {"/issues/../admin", "/issues/%2e%2e/admin", "/issues/%2E./admin", "/./a", "/a/.", "/a//b",
                          "//a", "/a\\b", "/a%5cb", "/a%2", "/a%zz", "http://evil/a", "*", "", "/a\x01", "/a%00",
                          "/a%0A", "/a%7f", "/group%2fproject", "/a%2Fb", "/a;b", "/a;", "/..;/admin", "/a%3Bb"})
    BOOST_TEST(!normalize_path(bad).ok(), "accepted " << bad);
}

BOOST_AUTO_TEST_CASE(an_escaped_slash_or_path_parameters_pass_only_with_the_opt_in_and_deny_sees_every_reading) {
  PathOptions slash, params, both;
  slash.allow_encoded_slash = true;
  params.allow_path_params = true;
  both.allow_encoded_slash = both.allow_path_params = true;
  auto s = normalize_path("/group%2fproject/issues", slash);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->path == "/group%2Fproject/issues");
  BOOST_TEST(s->readings == std::vector<std::string>{"/group/project/issues"});
  BOOST_TEST(!normalize_path("/a;b", slash).ok());
  auto p = normalize_path("/a;v=1/b", params);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->path == "/a;v=1/b");
  BOOST_TEST(p->readings == std::vector<std::string>{"/a/b"});
  BOOST_TEST(!normalize_path("/a%2Fb", params).ok());
  // A reading with a dot or empty segment is refused, however it is spelled.
  for (const char* bad : {"/x/..;/admin", "/x/.;a=b/y", "/;x/a", "/x%2F..%2Fadmin", "/x%2F%2Fa", "/x/.%2F/a"})
    BOOST_TEST(!normalize_path(bad, both).ok(), "accepted " << bad);

  auto def = parse_proxy_config_text(proxy_with("policy = \"read-only\"\nallow-encoded-slash = true\n"
                                                "allow-path-params = true\ndeny = [ { path = \"/a/b/**\" } ]"),
                                     "wf.toml");
  BOOST_REQUIRE_MESSAGE(def.ok(), (def.ok() ? "" : def.message()));
  auto verdict = [&](const char* raw) { return decide(def->proxies[0].allow, def->proxies[0].deny, "GET", *normalize_path(raw, both), ""); };
  for (const char* denied : {"/a%2Fb", "/a;x/b/c", "/a;x%2Fb/c", "/a%2Fb;x/c", "/A/B"})
    BOOST_TEST(!verdict(denied).allowed, denied << " allowed");
  BOOST_TEST(verdict("/a/c").allowed);
  BOOST_TEST(verdict("/a%2Fc").allowed);  // allow rules match the path as sent: one segment
}

BOOST_AUTO_TEST_CASE(paths_match_case_insensitively_unless_the_proxy_says_otherwise) {
  BOOST_TEST(glob_match("/Repos/*/Issues/**", "/repos/O/ISSUES/1", true));
  BOOST_TEST(!glob_match("/Repos/*/Issues/**", "/repos/O/ISSUES/1"));
  auto on = parse_proxy_config_text(proxy_with("policy = \"any\"\ndeny = [ { path = \"/admin/**\" } ]"), "wf.toml");
  auto off = parse_proxy_config_text(
      proxy_with("policy = \"any\"\ncase-insensitive-paths = false\ndeny = [ { path = \"/admin/**\" } ]"), "wf.toml");
  BOOST_REQUIRE(on.ok());
  BOOST_REQUIRE(off.ok());
  const ProxyDef& a = on->proxies[0];
  const ProxyDef& b = off->proxies[0];
  BOOST_TEST(a.paths.case_insensitive);  // the default, for every upstream
  BOOST_TEST(!b.paths.case_insensitive);
  BOOST_TEST(!decide(a.allow, a.deny, "GET", *normalize_path("/ADMIN/x", a.paths), "").allowed);
  BOOST_TEST(!decide(a.allow, a.deny, "GET", *normalize_path("/%41dmin/x", a.paths), "").allowed);
  BOOST_TEST(decide(b.allow, b.deny, "GET", *normalize_path("/ADMIN/x", b.paths), "").allowed);
  fails_at(proxy_with("policy = \"any\"\nallow-encoded-slash = \"yes\""), "4:23", "'allow-encoded-slash' in [proxies.p] must be true or false");
}

BOOST_AUTO_TEST_CASE(sizes_and_rates) {
  BOOST_TEST(*parse_byte_size("16KiB") == 16384u);
  BOOST_TEST(*parse_byte_size("1M") == 1048576u);
  BOOST_TEST(*parse_byte_size("512") == 512u);
  BOOST_TEST(*parse_byte_size("2 GB") == 2147483648u);
  BOOST_TEST(!parse_byte_size("KiB").ok());
  BOOST_TEST(!parse_byte_size("3 furlongs").ok());
  BOOST_TEST(parse_rate("5/sec")->per.count() == 1000);
  BOOST_TEST(parse_rate("5/hour")->per.count() == 3600000);
  for (const char* bad : {"0/min", "/min", "5/day", "5", "-1/min", "x/min"}) BOOST_TEST(!parse_rate(bad).ok(), bad);
}

BOOST_AUTO_TEST_CASE(a_token_bucket_refills_at_its_rate) {
  TokenBucket b(*parse_rate("2/min"), 1000);
  BOOST_TEST(b.ready(1000));
  b.take();
  BOOST_TEST(b.ready(1000));
  b.take();
  BOOST_TEST(!b.ready(1000));
  BOOST_TEST(b.retry_after_s(1000) == 30u);
  BOOST_TEST(b.retry_after_s(20000) == 11u);  // 19 s of the 30 have passed
  BOOST_TEST(b.ready(31000));
  b.take();
  BOOST_TEST(!b.ready(31000));
  BOOST_TEST(b.ready(1000000));  // full again, never more than the rate's count
  b.take();
  b.take();
  BOOST_TEST(!b.ready(1000000));
}

BOOST_AUTO_TEST_CASE(deny_rules_come_first_then_the_first_matching_allow_rule) {
  auto cfg = parse_proxy_config_text(proxy_with(R"(allow = [ { method = ["get", "HEAD"], path = "/**" },
          { method = "POST", path = "/issues/*/comments", body-max = "10" },
          { method = "POST", path = "/labels", body = '^\{"name":"[a-z-]+"\}$' } ]
deny = [ { path = "/admin/**" }, { method = "POST", body = "(?i)drop table" } ])"),
                                     "wf.toml");
  BOOST_REQUIRE_MESSAGE(cfg.ok(), (cfg.ok() ? "" : cfg.message()));
  const ProxyDef& d = cfg->proxies[0];
  BOOST_TEST(decide_for(d, "GET", "/issues/1").allowed);
  BOOST_TEST(decide_for(d, "GET", "/issues/1").rule->label == "allow[0]");
  auto admin = decide_for(d, "GET", "/admin/users");
  BOOST_TEST(!admin.allowed);
  BOOST_TEST(admin.rule->label == "deny[0]");
  BOOST_TEST(admin.reason == "GET /admin/users is refused by deny[0] { path = \"/admin/**\" }");
  BOOST_TEST(decide_for(d, "POST", "/issues/3/comments", "short").allowed);
  auto big = decide_for(d, "POST", "/issues/3/comments", "far too long");
  BOOST_TEST(!big.allowed);
  BOOST_TEST(big.rule->label == "allow[1]");
  BOOST_TEST(big.reason.find("has a body of 12 bytes; allow[1]") != std::string::npos);
  BOOST_TEST(decide_for(d, "POST", "/labels", R"({"name":"bug"})").allowed);
  auto odd = decide_for(d, "POST", "/labels", R"({"name":"bug","color":"red"})");
  BOOST_TEST(!odd.allowed);
  BOOST_TEST(odd.reason.find("does not match the body pattern of allow[2]") != std::string::npos);
  auto sql = decide_for(d, "POST", "/issues/3/comments", "Drop Table");
  BOOST_TEST(sql.rule->label == "deny[1]");
  auto none = decide_for(d, "DELETE", "/issues/3");
  BOOST_TEST(!none.allowed);
  BOOST_TEST(none.rule == nullptr);
  BOOST_TEST(none.reason.find("matches no allow rule (this proxy allows: GET, HEAD on /**;") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_body_pattern_that_runs_away_fails_closed) {
  auto cfg = parse_proxy_config_text(proxy_with(R"(allow = [ { method = "POST", path = "/x", body = '^(a+)+$' } ]
deny = [ { body = '(b+)+$' } ])"),
                                     "wf.toml");
  BOOST_REQUIRE(cfg.ok());
  std::string evil_a = std::string(5000, 'a') + "!";
  std::string evil_b = std::string(5000, 'b') + "!";
  BOOST_TEST((cfg->proxies[0].deny[0].body->search(evil_b) == BodyPattern::Match::too_complex));
  BOOST_TEST(!decide_for(cfg->proxies[0], "POST", "/x", evil_a).allowed);
  // Undecidable: the deny rule counts as matching.
  auto v = decide_for(cfg->proxies[0], "POST", "/x", "a" + evil_b);
  BOOST_TEST(!v.allowed);
  BOOST_REQUIRE(v.rule);
  BOOST_TEST(v.rule->label == "deny[0]");
}

BOOST_AUTO_TEST_SUITE_END()
