// Result schemas against the official JSON Schema Test Suite (draft 7,
// tests/data/json-schema-test-suite/tests/draft7, required tests;
// optional/ apart): every case goes through the same ResultSchema the engine
// uses for a step's result. The counts are printed and written to
// docs/skills.md; the test fails when fewer cases pass than recorded there,
// and names every case that fails.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "agent/result_schema.h"
#include "tests/support/testdata.h"

namespace {

struct Tally {
  int passed = 0, failed = 0;
  std::vector<std::string> failures;
};

void run_file(const std::filesystem::path& file, Tally& t) {
  std::ifstream in(file);
  auto groups = nlohmann::json::parse(in);
  for (auto& group : groups) {
    auto compiled = hearth::agent::ResultSchema::compile(group["schema"]);
    for (auto& c : group["tests"]) {
      std::string name = file.stem().string() + ": " + group["description"].get<std::string>() + ": " +
                         c["description"].get<std::string>();
      bool valid = false;
      if (compiled.ok()) {
        nlohmann::json args = compiled->wrapped() ? nlohmann::json{{"result", c["data"]}} : c["data"];
        nlohmann::json result;
        valid = compiled->check(args, &result).empty();
      }
      if (compiled.ok() && valid == c["valid"].get<bool>()) {
        ++t.passed;
      } else {
        ++t.failed;
        t.failures.push_back(name + (compiled.ok() ? "" : " (schema refused: " + compiled.message() + ")"));
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_schema_suite)

BOOST_AUTO_TEST_CASE(draft7_required_tests_pass_through_result_schemas) {
  auto dir = hearth::testing::testdata_dir() / "json-schema-test-suite" / "tests" / "draft7";
  Tally required, optional;
  for (auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    bool is_optional = entry.path().parent_path() != dir;
    run_file(entry.path(), is_optional ? optional : required);
  }
  BOOST_TEST_MESSAGE("draft7 required: " << required.passed << " of " << (required.passed + required.failed)
                                         << " pass; optional: " << optional.passed << " of "
                                         << (optional.passed + optional.failed));
  for (auto& f : required.failures) BOOST_TEST_MESSAGE("  fails: " << f);
  // The floor recorded in docs/skills.md ("JSON Schema Test Suite").
  BOOST_TEST(required.passed >= 810, required.passed << " pass, fewer than the 810 recorded");
}

BOOST_AUTO_TEST_SUITE_END()
