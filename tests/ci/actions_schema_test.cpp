// The action metadata (action.yml) and this repository's own Actions
// workflow are valid against SchemaStore's schemas, read the way GitHub
// reads YAML (1.2 core scalars: `on:` is a key, not true). The same reader
// and validator get SchemaStore's own positive and negative cases right, so
// a pass here means something. The docs carry the workflow verbatim.
#include <regex>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/engine/fixture.h"
#include "tests/support/testdata.h"

using namespace hearth::testing;

namespace {

fs::path source_root() {
  const char* d = std::getenv("HEARTH_SOURCE_ROOT");
  BOOST_REQUIRE_MESSAGE(d, "HEARTH_SOURCE_ROOT is not set; run the tests through meson test");
  return d;
}

// A YAML node as JSON with YAML 1.2 core-schema scalars: plain true/false,
// integers, floats and null are typed; quoted scalars stay strings.
json to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = to_json(it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (auto& el : n) a.push_back(to_json(el));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() != "?") return s;  // quoted or explicitly tagged: a string
      static const std::regex integer("[-+]?[0-9]+"), number("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
      if (std::regex_match(s, integer)) return std::stoll(s);
      if (std::regex_match(s, number)) return std::stod(s);
      return s;
    }
    default:
      return nullptr;
  }
}

json load_yaml(const std::string& text) { return to_json(YAML::Load(text)); }

class SchemaCheck {
 public:
  explicit SchemaCheck(const fs::path& schema_file) {
    schema_json_ = json::parse(read_file(schema_file));
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(schema_json_);
    parser.populateSchema(adapter, schema_);
  }
  /// Empty when valid; else the violations, one per line.
  std::string errors(const json& doc) const {
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    if (validator.validate(schema_, adapter, &results)) return "";
    std::string out;
    valijson::ValidationResults::Error e;
    while (results.popError(e)) {
      std::string path;
      for (auto& c : e.context) path += c;
      out += path + ": " + e.description + "\n";
    }
    return out.empty() ? "invalid" : out;
  }

 private:
  json schema_json_;
  valijson::Schema schema_;
};

const SchemaCheck& action_schema_check() {
  static SchemaCheck s(testdata_dir() / "schemastore" / "github-action.json");
  return s;
}
const SchemaCheck& workflow_schema_check() {
  static SchemaCheck s(testdata_dir() / "schemastore" / "github-workflow.json");
  return s;
}

// The YAML files of SchemaStore's tests, positive and negative, through our reader.
void check_schemastore_yaml(const char* kind, const SchemaCheck& schema) {
  int checked = 0;
  for (const char* dir : {"test", "negative_test"}) {
    bool expect_valid = std::string(dir) == "test";
    for (auto& entry : fs::directory_iterator(testdata_dir() / "schemastore" / "tests" / dir / kind)) {
      auto ext = entry.path().extension();
      if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;  // YAML reads JSON too
      json doc = load_yaml(read_file(entry.path()));
      std::string errs = schema.errors(doc);
      BOOST_TEST(errs.empty() == expect_valid, entry.path().filename().string() << ": " << (errs.empty() ? "accepted" : errs));
      ++checked;
    }
  }
  BOOST_TEST_MESSAGE(kind << ": " << checked << " SchemaStore YAML cases checked");
  BOOST_TEST(checked > 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(action_schema)

BOOST_AUTO_TEST_CASE(reader_and_validator_agree_with_schemastore_cases) {
  check_schemastore_yaml("github-workflow", workflow_schema_check());
  check_schemastore_yaml("github-action", action_schema_check());
  // The JSON-transcribed cases, with their verdicts.
  for (auto [file, schema] : {std::pair{"github-action-cases.json", &action_schema_check()},
                              std::pair{"github-workflow-cases.json", &workflow_schema_check()}}) {
    json cases = json::parse(read_file(testdata_dir() / "schemastore" / "tests" / file));
    for (auto& c : cases["cases"]) {
      std::string errs = schema->errors(c["document"]);
      BOOST_TEST(errs.empty() == c["valid"].get<bool>(), c["file"].get<std::string>() << ": " << errs);
    }
  }
}

BOOST_AUTO_TEST_CASE(yaml_booleans_are_yaml_1_2) {
  json doc = load_yaml("on: push\nyes: y\na: true\nb: 'true'\nc: 3\nd: ~\n");
  BOOST_TEST(doc.contains("on"));
  BOOST_TEST(doc["yes"] == "y");
  BOOST_TEST(doc["a"] == true);
  BOOST_TEST(doc["b"] == "true");
  BOOST_TEST(doc["c"] == 3);
  BOOST_TEST(doc["d"].is_null());
}

BOOST_AUTO_TEST_CASE(action_yml_is_valid_and_declares_the_interface) {
  json action = load_yaml(read_file(source_root() / "action.yml"));
  BOOST_TEST(action_schema_check().errors(action) == "");
  BOOST_TEST(action["runs"]["using"] == "composite");
  for (const char* in : {"workflow", "payload", "model", "state-path", "resume"})
    BOOST_TEST(action["inputs"].contains(in), "input " << in);
  BOOST_TEST(action["inputs"]["resume"]["default"] == "true");
  for (const char* out : {"run-id", "status", "result"}) {
    BOOST_TEST(action["outputs"].contains(out), "output " << out);
    BOOST_TEST(action["outputs"][out]["value"] == "${{ steps.hearth.outputs." + std::string(out) + " }}");
  }
  BOOST_TEST(action["inputs"]["apparmor-profile"]["default"] == "true");
  // Its steps: install (the release tarball, or a source build cached on the runner image),
  // the AppArmor profile, then hearth ci with the binary the install step chose.
  std::vector<std::string> runs, names;
  for (auto& step : action["runs"]["steps"]) {
    runs.push_back(step.value("run", ""));
    names.push_back(step.value("name", ""));
  }
  BOOST_REQUIRE_EQUAL(runs.size(), 5u);
  BOOST_TEST(runs[0] == "bash \"$GITHUB_ACTION_PATH/scripts/action-setup.sh\" install");
  auto& cache = action["runs"]["steps"][1];
  BOOST_TEST(cache["uses"].get<std::string>().rfind("actions/cache@", 0) == 0);
  BOOST_TEST(cache["if"] == "steps.setup.outputs.mode == 'source'");
  BOOST_TEST(cache["with"]["key"] == "${{ steps.setup.outputs.cache-key }}");
  BOOST_TEST(action["runs"]["steps"][2]["if"].get<std::string>().find("steps.setup.outputs.mode == 'source'") == 0);
  BOOST_TEST(runs[2] == "bash \"$GITHUB_ACTION_PATH/scripts/action-setup.sh\" build");
  BOOST_TEST(runs[3] == "bash \"$GITHUB_ACTION_PATH/scripts/action-setup.sh\" apparmor \"$HEARTH_BIN\"");
  BOOST_TEST(action["runs"]["steps"][3]["env"]["INPUT_APPARMOR_PROFILE"] == "${{ inputs.apparmor-profile }}");
  BOOST_TEST(runs[4].find("\"$HEARTH_BIN\" ci") != std::string::npos);
  for (int i : {3, 4}) BOOST_TEST(action["runs"]["steps"][i]["env"]["HEARTH_BIN"] == "${{ steps.setup.outputs.bin }}");
  // Build packages are installed by the source build only, never on the tarball's path.
  std::string text = read_file(source_root() / "action.yml");
  BOOST_TEST(text.find("install-deps.sh") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(own_workflow_is_valid_and_uses_the_action) {
  fs::path file = source_root() / ".github" / "workflows" / "hearth.yml";
  json wf = load_yaml(read_file(file));
  BOOST_TEST(workflow_schema_check().errors(wf) == "");
  bool uses_self = false;
  for (auto& step : wf["jobs"]["hearth"]["steps"]) uses_self = uses_self || step.value("uses", "") == "./";
  BOOST_TEST(uses_self);
}

// Every `run` of a job's steps, joined.
std::string job_runs(const json& job) {
  std::string all;
  for (auto& step : job["steps"]) all += step.value("run", "") + "\n";
  return all;
}

BOOST_AUTO_TEST_CASE(project_ci_runs_the_readme_commands_on_ubuntu_and_debian) {
  json wf = load_yaml(read_file(source_root() / ".github" / "workflows" / "ci.yml"));
  BOOST_TEST(workflow_schema_check().errors(wf) == "");
  BOOST_TEST(wf["on"].contains("push"));
  BOOST_TEST(wf["on"].contains("pull_request"));
  const json& ubuntu = wf["jobs"]["ubuntu"];
  const json& debian = wf["jobs"]["debian"];
  BOOST_TEST(ubuntu["runs-on"] == "ubuntu-24.04");
  BOOST_TEST(debian["container"]["image"] == "debian:12");
  // The commands the README gives a new user, on both.
  std::string readme = read_file(source_root() / "README.md");
  for (const char* command : {"./scripts/quickstart.sh", "meson test -C build"}) {
    BOOST_TEST(readme.find(command) != std::string::npos, "README lacks " << command);
    BOOST_TEST(job_runs(ubuntu).find(command) != std::string::npos, "ubuntu job lacks " << command);
    BOOST_TEST(job_runs(debian).find(command) != std::string::npos, "debian job lacks " << command);
  }
}

BOOST_AUTO_TEST_CASE(release_workflow_builds_publishes_records_the_checksum_and_moves_the_major_tag) {
  json wf = load_yaml(read_file(source_root() / ".github" / "workflows" / "release.yml"));
  BOOST_TEST(workflow_schema_check().errors(wf) == "");
  BOOST_TEST(wf["on"]["push"]["tags"] == json::array({"v*"}));
  BOOST_TEST(!wf["on"].contains("pull_request"));  // never with a fork's code and a write token
  BOOST_TEST(wf["permissions"]["contents"] == "read");
  const json& build = wf["jobs"]["build"];
  const json& publish = wf["jobs"]["publish"];
  BOOST_TEST(build["container"]["image"] == "debian:12");  // the oldest system the tarball runs on
  BOOST_TEST(job_runs(build).find("scripts/release.sh") != std::string::npos);
  BOOST_TEST(!build.contains("permissions"));  // the build gets no write token
  BOOST_TEST(publish["needs"] == "build");
  BOOST_TEST(publish["permissions"]["contents"] == "write");
  std::string runs = job_runs(publish);
  BOOST_TEST(runs.find("gh release create \"$GITHUB_REF_NAME\"") != std::string::npos);
  BOOST_TEST(runs.find(".sha256") != std::string::npos);
  BOOST_TEST(runs.find("> .github/release-sha256") != std::string::npos);
  BOOST_TEST(runs.find("major=${GITHUB_REF_NAME%%.*}") != std::string::npos);
  BOOST_TEST(runs.find("git push -f origin \"refs/tags/$GITHUB_REF_NAME\" \"refs/tags/$major\"") != std::string::npos);
  // The release is created before the tags move, so a moved tag never points at a missing tarball.
  BOOST_TEST(runs.find("gh release create") < runs.find("git push"));
}

BOOST_AUTO_TEST_CASE(docs_workflows_are_valid_and_match_the_repository) {
  std::string doc = read_file(source_root() / "docs" / "github-actions.md");
  // Every YAML block that is a workflow validates.
  std::regex block("```yaml\n([\\s\\S]*?)```");
  int workflows = 0;
  for (std::sregex_iterator it(doc.begin(), doc.end(), block), end; it != end; ++it) {
    json y = load_yaml((*it)[1].str());
    if (!y.is_object() || !y.contains("jobs")) continue;
    BOOST_TEST(workflow_schema_check().errors(y) == "", "docs block " << workflows + 1);
    ++workflows;
  }
  BOOST_TEST(workflows >= 3);  // triage, PR review, nightly
  // The repository's own workflow appears in the docs as it is.
  std::string own = read_file(source_root() / ".github" / "workflows" / "hearth.yml");
  BOOST_TEST(doc.find(own) != std::string::npos, "docs/github-actions.md must quote .github/workflows/hearth.yml verbatim");
}

BOOST_AUTO_TEST_SUITE_END()
