// A temporary repository that tests run the real `hearth` binary in, and
// the assertions the CLI suites share (tests/cli/*_test.cpp).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"

namespace hearth::testing::cli {

// The CLI suites say `using namespace hearth::testing::cli`: the shared
// helpers come with it.
using namespace hearth::testing;

/// A temporary repository: a directory with `.hearth/workflows/`. `hearth`
/// runs in its root unless a test says otherwise.
struct Repo {
  TempDir dir;

  Repo() { fs::create_directories(root() / ".hearth" / "workflows"); }
  fs::path root() const { return dir.path; }
  fs::path default_state() const { return root() / ".hearth" / "state.db"; }

  /// Writes .hearth/workflows/<name>.toml.
  void workflow(const std::string& name, const std::string& toml) const {
    write_file(root() / ".hearth" / "workflows" / (name + ".toml"), toml);
  }

  Outcome hearth(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                 std::optional<fs::path> cwd = std::nullopt) const {
    HearthProcess p({std::move(args), std::move(env), cwd.value_or(root())});
    return p.finish();
  }

  /// `hearth runs --json <extra...>`, parsed.
  json runs(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"runs", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_json(hearth(args), "hearth runs --json");
  }

  /// `hearth show --json <id>`, parsed.
  json show(const std::string& id) const { return parse_json(hearth({"show", "--json", id}), "hearth show --json"); }

  static json parse_json(const Outcome& o, const std::string& what) {
    BOOST_REQUIRE_MESSAGE(o.exit_code == 0, what + " exited " + std::to_string(o.exit_code) + ": " + o.err);
    try {
      return json::parse(o.out);
    } catch (const json::exception& e) {
      BOOST_FAIL(what + " printed invalid JSON (" + e.what() + "):\n" + o.out);
      throw;
    }
  }
};

/// A failed `hearth` invocation's output, for assertion messages.
inline std::string shown(const Outcome& o) {
  return "exit " + std::to_string(o.exit_code) + "\nstdout:\n" + o.out + "\nstderr:\n" + o.err;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline std::string only_run_id(const Repo& repo) {
  json runs = repo.runs();
  BOOST_REQUIRE_MESSAGE(runs.size() == 1u, "expected one run, have:\n" + runs.dump(2));
  return runs[0]["id"].get<std::string>();
}

inline const json& step_of(const json& run, const std::string& id) {
  for (auto& s : run["steps"])
    if (s["id"] == id) return s;
  BOOST_FAIL("no step " + id + " in:\n" + run.dump(2));
  throw 0;
}

/// Requires `o` to have exited `code` (as REQUIRE_EXIT does), then checks
/// that what it printed on stderr (stdout) holds each of `parts`, in order.
inline void expect_stderr(const Outcome& o, int code, std::initializer_list<std::string> parts) {
  BOOST_REQUIRE_MESSAGE(o.exit_code == code, shown(o));
  for (const auto& part : parts) BOOST_TEST(contains(o.err, part), shown(o));
}
inline void expect_stdout(const Outcome& o, int code, std::initializer_list<std::string> parts) {
  BOOST_REQUIRE_MESSAGE(o.exit_code == code, shown(o));
  for (const auto& part : parts) BOOST_TEST(contains(o.out, part), shown(o));
}

}  // namespace hearth::testing::cli

// Evaluates `outcome` once: it may be the call that runs hearth.
#define REQUIRE_EXIT(outcome, code)                                                          \
  do {                                                                                       \
    const ::hearth::testing::Outcome& require_exit_ = (outcome);                             \
    BOOST_REQUIRE_MESSAGE(require_exit_.exit_code == (code), ::hearth::testing::cli::shown(require_exit_)); \
  } while (0)
