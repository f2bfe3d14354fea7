// SKILL.md loading against real public skills and the reference validator's
// own cases (tests/data/agent-skills).
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/files.h"
#include "tests/support/testdata.h"
#include "workflows/skill.h"

using namespace hearth::workflows;
using namespace hearth::testing;

namespace {

fs::path skills_data() { return testdata_dir() / "agent-skills"; }

// Builds a skill folder from a reference case ("dir_name", "files").
fs::path make_case(const TempDir& tmp, const nlohmann::json& c) {
  fs::path dir = tmp.path / c["dir_name"].get<std::string>();
  fs::create_directories(dir);
  for (auto& [name, text] : c["files"].items()) tmp.write(dir.lexically_relative(tmp.path) / name, text.get<std::string>());
  return dir;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

nlohmann::json ref_cases() { return nlohmann::json::parse(read_file(skills_data() / "skills-ref-cases.json")); }

// Checks one "parse" case of the reference suite.
void check_parse_case(const nlohmann::json& c) {
      TempDir tmp;
      fs::path dir = make_case(tmp, c);
      SkillLoad r = load_skill(dir.string());
      if (c.contains("expect_error_containing")) {
        BOOST_REQUIRE(!r.ok());
        BOOST_TEST(joined(r.errors).find(c["expect_error_containing"].get<std::string>()) != std::string::npos,
                   joined(r.errors));
        return;
      }
      const auto& want = c["expect"];
      if (want.contains("found_file") && !want.contains("name")) {
        // Only the lookup is checked: SKILL.md wins over skill.md.
        BOOST_TEST(joined(r.errors).find(want["found_file"].get<std::string>()) != std::string::npos);
        BOOST_TEST(joined(r.errors).find("skill.md:") == std::string::npos);
        return;
      }
      BOOST_REQUIRE_MESSAGE(r.ok(), joined(r.errors));
      const Skill& s = *r.skill;
      if (want.contains("found_file")) BOOST_TEST(fs::path(s.file).filename() == want["found_file"].get<std::string>());
      if (want.contains("name")) BOOST_TEST(s.name == want["name"].get<std::string>());
      if (want.contains("description")) BOOST_TEST(s.description == want["description"].get<std::string>());
      if (want.contains("license")) BOOST_TEST(s.license.value_or("") == want["license"].get<std::string>());
      if (want.contains("body_contains"))
        BOOST_TEST(s.body.find(want["body_contains"].get<std::string>()) != std::string::npos);
      if (want.contains("metadata")) {
        for (auto& [k, v] : want["metadata"].items()) BOOST_TEST(s.metadata.at(k) == v.get<std::string>());
      }
      if (want.contains("allowed-tools")) {
        std::string tools;
        for (const auto& t : s.allowed_tools) tools += (tools.empty() ? "" : " ") + t;
        BOOST_TEST(tools == want["allowed-tools"].get<std::string>());
      }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(skill)

BOOST_AUTO_TEST_CASE(every_real_public_skill_loads_with_its_name_description_and_body) {
  int loaded = 0;
  for (const auto& e : fs::directory_iterator(skills_data() / "skills")) {
    BOOST_TEST_CONTEXT(e.path()) {
      SkillLoad r = load_skill(e.path().string());
      BOOST_REQUIRE_MESSAGE(r.ok(), joined(r.errors));
      const Skill& s = *r.skill;
      BOOST_TEST(s.name == e.path().filename().string());
      BOOST_TEST(!s.description.empty());
      BOOST_TEST(s.body.size() > 100u);
      BOOST_TEST(s.body.rfind("---", 0) != 0);           // the frontmatter is not in the body
      BOOST_TEST(s.text.find(s.body) != std::string::npos);
      ++loaded;
    }
  }
  BOOST_TEST(loaded == 10);
}

BOOST_AUTO_TEST_CASE(fields_come_out_as_written) {
  SkillLoad pdf = load_skill((skills_data() / "skills" / "pdf").string());
  BOOST_REQUIRE(pdf.ok());
  BOOST_TEST(pdf.skill->license.value_or("") == "Proprietary. LICENSE.txt has complete terms");
  BOOST_TEST(pdf.skill->description.rfind("Use this skill whenever the user wants to do anything with PDF files.", 0) == 0);
  // A block scalar (|-) keeps its line breaks and loses the indentation.
  SkillLoad api = load_skill((skills_data() / "skills" / "claude-api").string());
  BOOST_REQUIRE(api.ok());
  BOOST_TEST(api.skill->description.rfind("Reference for the Claude API / Anthropic SDK", 0) == 0);
  BOOST_TEST(api.skill->description.find("\nTRIGGER") != std::string::npos);
  BOOST_TEST(api.skill->body.rfind("#", 0) == 0);
}

BOOST_AUTO_TEST_CASE(bundled_files_are_listed_relative_to_the_skill_and_exist_upstream) {
  // The manifest is the full upstream file list; every file we list must be in it.
  std::set<std::string> manifest;
  std::istringstream in(read_file(skills_data() / "anthropics-skills-MANIFEST.tsv"));
  for (std::string line; std::getline(in, line);) manifest.insert(line.substr(line.find('\t') + 1));
  SkillLoad pdf = load_skill((skills_data() / "skills" / "pdf").string());
  BOOST_REQUIRE(pdf.ok());
  std::vector<std::string> paths;
  for (const auto& f : pdf.skill->files) paths.push_back(f.path);
  BOOST_TEST(paths == (std::vector<std::string>{"LICENSE.txt", "forms.md", "reference.md"}),
             boost::test_tools::per_element());
  for (const char* name : {"claude-api", "mcp-builder", "skill-creator", "pdf"}) {
    SkillLoad r = load_skill((skills_data() / "skills" / name).string());
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(!r.skill->files.empty());
    for (const auto& f : r.skill->files) {
      BOOST_TEST(manifest.count(std::string("skills/") + name + "/" + f.path) == 1u, f.path);
      BOOST_TEST(f.size > 0u);
      BOOST_TEST(f.path != "SKILL.md");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_description_over_the_limit_loads_but_strict_validation_rejects_it) {
  // claude-api's description is 1068 characters (more bytes): the spec allows 1024.
  fs::path dir = skills_data() / "skills" / "claude-api";
  SkillLoad r = load_skill(dir.string());
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r.warnings.size() == 1u);
  BOOST_TEST(r.warnings[0].find("Description exceeds 1024 character limit (1068 chars)") != std::string::npos);
  BOOST_TEST(r.warnings[0].find("SKILL.md:3:") != std::string::npos, r.warnings[0]);
  auto strict = validate_skill(dir.string());
  BOOST_TEST(strict.size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_template_loads_in_a_folder_of_its_name_and_not_elsewhere) {
  TempDir tmp;
  tmp.write("template-skill/SKILL.md", read_file(skills_data() / "template" / "SKILL.md"));
  SkillLoad ok = load_skill((tmp.path / "template-skill").string());
  BOOST_REQUIRE_MESSAGE(ok.ok(), joined(ok.errors));
  BOOST_TEST(ok.skill->name == "template-skill");
  SkillLoad bad = load_skill((skills_data() / "template").string());
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.errors[0].find("Directory name 'template' must match skill name 'template-skill'") != std::string::npos);
  BOOST_TEST(bad.errors[0].find("SKILL.md:2:7: ") != std::string::npos, bad.errors[0]);
}

BOOST_AUTO_TEST_CASE(reference_validator_cases_accept_and_reject_the_same_skills) {
  int n = 0;
  const nlohmann::json cases = ref_cases();
  for (const auto& c : cases["validate"]) {
    BOOST_TEST_CONTEXT(c["id"].get<std::string>()) {
      TempDir tmp;
      fs::path dir = make_case(tmp, c);
      std::vector<std::string> got = validate_skill(dir.string());
      const auto& want = c["expect_errors"];
      if (want.empty()) {
        BOOST_TEST(got.empty(), joined(got));
      } else {
        BOOST_REQUIRE_MESSAGE(got.size() == want.size(), joined(got));
        for (std::size_t i = 0; i < got.size(); ++i) {
          // Same wording as the reference, after our "file:line:col: " prefix.
          std::string msg = want[i];
          BOOST_TEST(got[i].find(msg) != std::string::npos, got[i] << " lacks " << msg);
        }
      }
      ++n;
    }
  }
  BOOST_TEST(n == 19);
}

BOOST_AUTO_TEST_CASE(reference_parser_cases_give_the_same_fields_and_errors) {
  int n = 0;
  const nlohmann::json cases = ref_cases();
  for (const auto& c : cases["parse"]) {
    BOOST_TEST_CONTEXT(c["id"].get<std::string>()) check_parse_case(c);
    ++n;
  }
  BOOST_TEST(n == 13);
}

BOOST_AUTO_TEST_CASE(reference_prompt_cases_render_an_escaped_catalog) {
  const nlohmann::json cases = ref_cases();
  for (const auto& c : cases["prompt"]) {
    BOOST_TEST_CONTEXT(c["id"].get<std::string>()) {
      TempDir tmp;
      std::vector<Skill> skills;
      for (const auto& s : c["skills"]) {
        SkillLoad r = load_skill(make_case(tmp, s).string());
        BOOST_REQUIRE(r.ok());
        skills.push_back(*r.skill);
      }
      std::string out = skill_catalog(skills);
      if (c.contains("expect_exact")) BOOST_TEST(out == c["expect_exact"].get<std::string>());
      for (const auto& w : c.value("expect_contains", nlohmann::json::array()))
        BOOST_TEST(out.find(w.get<std::string>()) != std::string::npos, w);
      for (const auto& w : c.value("expect_not_contains", nlohmann::json::array()))
        BOOST_TEST(out.find(w.get<std::string>()) == std::string::npos, w);
      const nlohmann::json counts = c.value("expect_count", nlohmann::json::object());
      for (auto& [needle, count] : counts.items()) {
        int seen = 0;
        for (auto p = out.find(needle); p != std::string::npos; p = out.find(needle, p + 1)) ++seen;
        BOOST_TEST(seen == count.get<int>(), needle);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(broken_frontmatter_names_the_line_and_column) {
  TempDir tmp;
  tmp.write("s/SKILL.md", "---\nname: s\ndescription: fine\nlicense: [MIT\n---\nbody\n");
  SkillLoad r = load_skill((tmp.path / "s").string());
  BOOST_REQUIRE(!r.ok());
  std::string prefix = (tmp.path / "s" / "SKILL.md").string() + ":";
  BOOST_TEST(r.errors[0].rfind(prefix, 0) == 0, r.errors[0]);
  BOOST_TEST(r.errors[0].find("Invalid YAML in frontmatter") != std::string::npos, r.errors[0]);
  // The line is in the file's numbering (the opening --- is line 1); yaml-cpp reports the
  // unclosed flow sequence where it notices it, at or after line 4.
  int line = std::stoi(r.errors[0].substr(prefix.size()));
  BOOST_TEST(line >= 4);
  BOOST_TEST(line <= 5);

  tmp.write("t/SKILL.md", "---\nname: t\ndescription:\n  - a list\n---\nbody\n");
  SkillLoad t = load_skill((tmp.path / "t").string());
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.errors[0].find("SKILL.md:4:3: Field 'description' must be a non-empty string") != std::string::npos,
             t.errors[0]);
}

BOOST_AUTO_TEST_CASE(non_string_required_fields_and_bad_metadata) {
  TempDir tmp;
  tmp.write("s/SKILL.md", "---\nname: s\ndescription: true\n---\n");
  BOOST_TEST(joined(load_skill((tmp.path / "s").string()).errors).find("'description' must be a non-empty string") !=
             std::string::npos);
  tmp.write("n/SKILL.md", "---\nname: n\ndescription: 42\n---\n");
  BOOST_TEST(joined(load_skill((tmp.path / "n").string()).errors).find("SKILL.md:3:14: Field 'description' must be") !=
             std::string::npos);
  tmp.write("inf/SKILL.md", "---\nname: inf\ndescription: nan\n---\n");  // plain words, not numbers
  BOOST_TEST(load_skill((tmp.path / "inf").string()).ok());
  tmp.write("m/SKILL.md", "---\nname: m\ndescription: d\nmetadata: [1, 2]\nversion: 3\n---\nbody");
  SkillLoad m = load_skill((tmp.path / "m").string());
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m.warnings.size() == 2u, joined(m.warnings));
  BOOST_TEST(joined(m.warnings).find("Unexpected fields in frontmatter: version") != std::string::npos);
  BOOST_TEST(m.skill->body == "body");
  tmp.write("e/SKILL.md", "---\nname: e\ndescription: \"  \"\n---\n");
  BOOST_TEST(joined(load_skill((tmp.path / "e").string()).errors).find("'description' must be a non-empty") !=
             std::string::npos);
  tmp.write("big/SKILL.md", "---\nname: big\ndescription: d\n---\n" + std::string(5u << 20, 'x'));
  BOOST_TEST(joined(load_skill((tmp.path / "big").string()).errors).find("larger than 4 MiB") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(find_skill_looks_in_hearth_then_agents_and_names_both_when_missing) {
  TempDir repo;
  repo.write(".agents/skills/triage/SKILL.md", "---\nname: triage\ndescription: from agents\n---\nB\n");
  SkillLoad a = find_skill(repo.path.string(), "triage");
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a.skill->description == "from agents");
  repo.write(".hearth/skills/triage/SKILL.md", "---\nname: triage\ndescription: from hearth\n---\nB\n");
  BOOST_TEST(find_skill(repo.path.string(), "triage").skill->description == "from hearth");
  SkillLoad none = find_skill(repo.path.string(), "triagee");
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(none.errors[0].find(".hearth/skills/triagee/SKILL.md") != std::string::npos);
  BOOST_TEST(none.errors[0].find(".agents/skills/triagee/SKILL.md") != std::string::npos);
  for (const char* bad : {"../x", "a/b", "..", ""}) BOOST_TEST(!find_skill(repo.path.string(), bad).ok(), bad);
}

BOOST_AUTO_TEST_CASE(a_skill_cannot_lead_out_of_the_repository) {
  TempDir repo, outside;
  outside.write("evil/SKILL.md", "---\nname: evil\ndescription: outside\n---\nB\n");
  fs::create_directories(repo.path / ".hearth" / "skills");
  fs::create_directory_symlink(outside.path / "evil", repo.path / ".hearth" / "skills" / "evil");
  SkillLoad r = find_skill(repo.path.string(), "evil");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.errors[0].find("leads outside the repository") != std::string::npos, r.errors[0]);
  // Symlinks inside a skill that leave it are not listed as its files.
  repo.write(".hearth/skills/ok/SKILL.md", "---\nname: ok\ndescription: d\n---\nB\n");
  repo.write(".hearth/skills/ok/references/a.md", "ref");
  fs::create_symlink("/etc/passwd", repo.path / ".hearth/skills/ok/references/passwd");
  fs::create_symlink("a.md", repo.path / ".hearth/skills/ok/references/alias.md");
  SkillLoad ok = find_skill(repo.path.string(), "ok");
  BOOST_REQUIRE(ok.ok());
  std::vector<std::string> paths;
  for (const auto& f : ok.skill->files) paths.push_back(f.path);
  BOOST_TEST(paths == (std::vector<std::string>{"references/a.md", "references/alias.md"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(instructions_carry_the_body_the_files_and_the_arguments) {
  TempDir repo;
  repo.write(".hearth/skills/triage/SKILL.md", "---\nname: triage\ndescription: d\n---\n# Triage\nRead the issue.\n");
  repo.write(".hearth/skills/triage/scripts/fetch.sh", "echo");
  SkillLoad r = find_skill(repo.path.string(), "triage");
  BOOST_REQUIRE(r.ok());
  std::string text = skill_instructions(*r.skill, ".hearth/skills/triage", R"({"issue":42})");
  BOOST_TEST(text.find("# Triage\nRead the issue.") != std::string::npos);
  BOOST_TEST(text.find("- .hearth/skills/triage/scripts/fetch.sh") != std::string::npos);
  BOOST_TEST(text.find("```json\n{\"issue\":42}\n```") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
