// What a granted git, gh and npm run with, decided from the workflow alone:
// where a push may go, which host gh's GH_REPO may name, and npm's user
// configuration (commands/git_push.h, commands/program_config.h).
#include <boost/test/unit_test.hpp>

#include "commands/git_push.h"
#include "commands/program_config.h"

using namespace hearth::commands;

BOOST_AUTO_TEST_SUITE(program_config)

BOOST_AUTO_TEST_CASE(a_push_goes_to_a_server_never_to_a_local_path_or_a_transport_helper) {
  for (std::string ok : {"https://github.com/o/r.git", "ssh://git@github.com/o/r.git", "git@github.com:o/r.git",
                         "http://127.0.0.1:8080/r.git"})
    BOOST_TEST(check_remote_url(ok).ok(), ok);
  for (std::string bad : {"/srv/evil.git", "./evil.git", "file:///srv/r.git", "ext::sh -c touch% /tmp/x",
                          "http://example.com/r.git", "evil.git", "-uhost:path", "https://", "fd::3"}) {
    auto s = check_remote_url(bad);
    BOOST_TEST(!s.ok(), bad);
  }
  BOOST_TEST(check_remote_url("/srv/evil.git").message().find("never to a local path") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(gh_repo_must_stay_on_the_grants_host) {
  BOOST_TEST(check_gh_env({"GH_HOST=ghe.example.com", "GH_REPO=o/r"}).ok());
  BOOST_TEST(check_gh_env({"GH_HOST=ghe.example.com", "GH_REPO=ghe.example.com/o/r"}).ok());
  BOOST_TEST(check_gh_env({"GH_REPO=github.com/o/r"}).ok());
  for (std::string bad : {"evil.example/o/r", "git@evil.example:o/r", "https://evil.example/o/r", "o/r/x/y", "../r"}) {
    auto s = check_gh_env({"GH_HOST=ghe.example.com", "GH_REPO=" + bad});
    BOOST_TEST(!s.ok(), bad);
    BOOST_TEST(s.message().find("'ghe.example.com'") != std::string::npos, s.message());
  }
}

BOOST_AUTO_TEST_CASE(npm_gets_the_token_literally_for_its_registry_only) {
  auto c = npm_userconfig({"NPM_CONFIG_REGISTRY=https://npm.example.com/sub"}, "tok_abcdef");
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(*c == "registry=https://npm.example.com/sub/\n//npm.example.com/sub/:_authToken=tok_abcdef\n");
  BOOST_TEST(!npm_userconfig({}, "tok_abcdef").ok());  // a token needs its registry
  BOOST_TEST(!npm_userconfig({"NPM_CONFIG_REGISTRY=http://npm.example.com/"}, "tok_abcdef").ok());
  BOOST_TEST(!npm_userconfig({"npm_config_registry=https://npm.example.com/"}, "tok\nregistry=x").ok());
  auto env = npm_env({"NPM_CONFIG_IGNORE_SCRIPTS=false", "PATH=/usr/bin"}, "/state/npmrc");
  BOOST_TEST(env_value(env, "npm_config_ignore_scripts", true) == "true");
  BOOST_TEST(env_value(env, "npm_config_userconfig") == "/state/npmrc");
  BOOST_TEST(env_value(env, "NPM_TOKEN").empty());
}

BOOST_AUTO_TEST_SUITE_END()
