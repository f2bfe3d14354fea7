// Libraries opened on first use (util/lazy_library.h): a command that does
// not need libcurl, libgit2, ICU or libcrypto starts without them; one that
// needs a missing one says which library, for what, and how to get it.
// In-process for the loader itself, and the real built `hearth` with the
// libraries made unloadable: a directory of files by their sonames that are
// not libraries, first on LD_LIBRARY_PATH (as a system without them would be,
// but loudly: the loader cannot fall back to the real ones).
#include "util/lazy_library.h"

#include <curl/curl.h>

#include <string>

#include <boost/test/unit_test.hpp>

#include "tests/cli/repo.h"
#include "util/lazy/crypto.h"
#include "util/lazy/curl.h"
#include "util/lazy/git2.h"
#include "util/lazy/icu.h"

using namespace hearth::testing::cli;

namespace {

// A directory holding a non-library under the soname of each of `libraries`
// (by default every lazily opened one).
struct UnloadableLibraries {
  TempDir dir;
  explicit UnloadableLibraries(std::initializer_list<hearth::LazyLibrary*> libraries = {
                                   &hearth::lazy::curl_library(), &hearth::lazy::git2_library(),
                                   &hearth::lazy::icu_library(), &hearth::lazy::crypto_library()}) {
    for (auto* library : libraries) write_file(dir.path / library->soname(), "not a shared library\n");
  }
  std::map<std::string, std::string> env() const { return {{"LD_LIBRARY_PATH", dir.path.string()}}; }
};

const char* kSkillWorkflow = R"(
name = "review"
[sandbox]
kind = "local"
[[steps]]
id = "review"
skill = "code-review"
)";

const char* kSkill = R"(---
name: code-review
description: Reviews a change.
---
Review the change.
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(lazy_library)

BOOST_AUTO_TEST_CASE(a_missing_library_is_named_with_what_needs_it) {
  hearth::LazyLibrary library("libhearth-no-such-library.so.9", "the test's imaginary feature");
  hearth::Status opened = library.open();
  BOOST_REQUIRE(!opened.ok());
  BOOST_TEST(contains(opened.message(), "cannot load libhearth-no-such-library.so.9"));
  BOOST_TEST(contains(opened.message(), "the test's imaginary feature needs"));
  BOOST_TEST(contains(opened.message(), "install the package that provides libhearth-no-such-library.so.9"));
  // The outcome is remembered: a later call says the same, no second search.
  BOOST_TEST(library.open().message() == opened.message());
  auto symbol = library.symbol("anything");
  BOOST_REQUIRE(!symbol.ok());
  BOOST_TEST(symbol.message() == opened.message());
}

BOOST_AUTO_TEST_CASE(a_missing_symbol_is_named_with_its_library) {
  hearth::LazyLibrary library("libc.so.6", "the test");
  auto missing = library.symbol("hearth_no_such_function");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(contains(missing.message(), "libc.so.6 has no symbol hearth_no_such_function"));
  BOOST_TEST(contains(missing.message(), "which the test needs"));
  auto found = library.symbol("strlen");
  BOOST_REQUIRE(found.ok());
  using Strlen = size_t (*)(const char*);
  BOOST_TEST(reinterpret_cast<Strlen>(*found)("hearth") == 6u);
}

BOOST_AUTO_TEST_CASE(the_variadic_curl_forwarders_pass_their_argument_through) {
  // curl_easy_setopt takes a pointer for CURLOPT_URL; getinfo hands it back
  // through a pointer to a pointer.
  CURL* h = curl_easy_init();
  BOOST_REQUIRE(h != nullptr);
  const std::string url = "http://127.0.0.1:9/hearth";
  BOOST_TEST(curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK);
  BOOST_TEST(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1500L) == CURLE_OK);
  BOOST_TEST(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t{1} << 33) == CURLE_OK);
  char* effective = nullptr;
  BOOST_TEST(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK);
  BOOST_REQUIRE(effective != nullptr);
  BOOST_TEST(std::string(effective) == url);
  // An option of the wrong range is refused by curl itself, not misread.
  BOOST_TEST(std::string(curl_easy_strerror(CURLE_UNKNOWN_OPTION)).size() > 0u);
  curl_easy_cleanup(h);
}

BOOST_AUTO_TEST_CASE(version_and_help_start_without_any_of_them) {
  UnloadableLibraries unloadable;
  Repo repo;
  Outcome version = repo.hearth({"--version"}, unloadable.env());
  BOOST_TEST(version.exit_code == 0, shown(version));
  BOOST_TEST(contains(version.out, "hearth "));
  Outcome help = repo.hearth({"--help"}, unloadable.env());
  BOOST_TEST(help.exit_code == 0, shown(help));
}

BOOST_AUTO_TEST_CASE(a_skill_without_icu_says_which_library_is_missing) {
  // A name beyond ASCII needs Unicode's rules (NFKC, what a letter is).
  UnloadableLibraries unloadable({&hearth::lazy::icu_library()});
  Repo repo;
  const std::string name = "r\xC3\xA9vision";  // "révision"
  repo.workflow("review", "name = \"review\"\n[sandbox]\nkind = \"local\"\n[[steps]]\nid = \"review\"\nskill = \"" +
                              name + "\"\n");
  write_file(repo.root() / ".hearth" / "skills" / name / "SKILL.md",
             "---\nname: " + name + "\ndescription: Reviews a change.\n---\nReview the change.\n");
  Outcome o = repo.hearth({"validate"}, unloadable.env());
  BOOST_TEST(o.exit_code != 0, shown(o));
  BOOST_TEST(contains(o.err, "cannot load " + std::string(hearth::lazy::icu_library().soname())), shown(o));
  BOOST_TEST(contains(o.err, "reading a skill"), shown(o));
  // The same repository validates once the library is there.
  Outcome fine = repo.hearth({"validate"});
  BOOST_TEST(fine.exit_code == 0, shown(fine));
}

BOOST_AUTO_TEST_CASE(an_ascii_skill_is_checked_without_icu) {
  // ASCII names and descriptions follow the same rules without ICU: a valid
  // one validates, and a bad one gets the errors ICU's rules give.
  UnloadableLibraries unloadable({&hearth::lazy::icu_library()});
  Repo repo;
  repo.workflow("review", kSkillWorkflow);
  write_file(repo.root() / ".hearth" / "skills" / "code-review" / "SKILL.md", kSkill);
  Outcome o = repo.hearth({"validate"}, unloadable.env());
  BOOST_TEST(o.exit_code == 0, shown(o));
  BOOST_TEST(!contains(o.err, "cannot load"), shown(o));

  write_file(repo.root() / ".hearth" / "skills" / "code-review" / "SKILL.md",
             "---\nname: Code_Review\ndescription: Reviews a change.\n---\nReview.\n");
  Outcome bad = repo.hearth({"validate"}, unloadable.env());
  BOOST_TEST(bad.exit_code != 0, shown(bad));
  BOOST_TEST(!contains(bad.err, "cannot load"), shown(bad));
  BOOST_TEST(contains(bad.err, "Skill name 'Code_Review' must be lowercase"), shown(bad));
  BOOST_TEST(contains(bad.err, "contains invalid characters"), shown(bad));
  BOOST_TEST(contains(bad.err, "Directory name 'code-review' must match skill name 'Code_Review'"), shown(bad));
}

BOOST_AUTO_TEST_SUITE_END()
