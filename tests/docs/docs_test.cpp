// The documentation's examples are checked: every ```toml block in README.md
// and docs/*.md is a whole workflow that `hearth validate` (the real binary)
// accepts, unless its info string says otherwise:
//   ```toml fragment   part of a workflow: must still be valid TOML
//   ```toml broken     a deliberately wrong example: `hearth validate` must refuse it
// A ```markdown block of the same page that is a SKILL.md (front matter with
// `name:`) is there when its workflows are validated, as
// .hearth/skills/<name>/SKILL.md: a page that shows a workflow with its skill
// is checked as a whole.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "workflows/toml_document.h"

using namespace hearth::testing;

namespace {

struct Block {
  std::string where;  // file:line of the opening fence
  std::string kind;   // "", "fragment" or "broken"
  std::string text;
};

fs::path source_root() {
  const char* d = std::getenv("HEARTH_SOURCE_ROOT");
  BOOST_REQUIRE_MESSAGE(d, "HEARTH_SOURCE_ROOT is not set; run the tests through meson test");
  return d;
}

std::vector<fs::path> documents() {
  std::vector<fs::path> out{source_root() / "README.md"};
  for (auto& e : fs::directory_iterator(source_root() / "docs"))
    if (e.path().extension() == ".md") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Block> toml_blocks(const fs::path& doc) {
  std::vector<Block> out;
  std::ifstream in(doc);
  std::string line;
  int n = 0;
  Block* open = nullptr;
  while (std::getline(in, line)) {
    ++n;
    std::string trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (open) {
      if (trimmed == "```") open = nullptr;
      else open->text += line + "\n";
    } else if (trimmed.rfind("```toml", 0) == 0) {
      std::string kind = trimmed.substr(7);
      kind.erase(0, std::min(kind.find_first_not_of(' '), kind.size()));
      out.push_back({fs::relative(doc, source_root()).string() + ":" + std::to_string(n), kind, ""});
      open = &out.back();
    }
  }
  return out;
}

/// The SKILL.md files the page shows: name and text.
std::vector<std::pair<std::string, std::string>> skill_blocks(const fs::path& doc) {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in(doc);
  std::string line, text;
  bool open = false;
  while (std::getline(in, line)) {
    if (!open && line == "```markdown") {
      open = true;
      text.clear();
    } else if (open && line == "```") {
      open = false;
      static const std::regex front("^---\n(?:[^\n]*\n)*?name: *([a-z0-9-]+) *\n");
      std::smatch m;
      if (std::regex_search(text, m, front)) out.push_back({m[1].str(), text});
    } else if (open) {
      text += line + "\n";
    }
  }
  return out;
}

/// `hearth validate` of `text` as a workflow in an empty repository that
/// holds `skills`.
hearth::testing::Outcome validate(const std::string& text,
                                  const std::vector<std::pair<std::string, std::string>>& skills = {}) {
  TempDir repo;
  fs::create_directories(repo.path / ".hearth" / "workflows");
  for (auto& [name, skill] : skills) {
    fs::create_directories(repo.path / ".hearth" / "skills" / name);
    write_file(repo.path / ".hearth" / "skills" / name / "SKILL.md", skill);
  }
  write_file(repo.path / ".hearth" / "workflows" / "example.toml", text);
  HearthProcess p(Invocation{{"--repo", repo.str(), "validate", ".hearth/workflows/example.toml"}, {}, repo.path});
  return p.finish();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(docs)

BOOST_AUTO_TEST_CASE(every_toml_example_in_the_docs_is_what_it_says) {
  int checked = 0;
  for (auto& doc : documents()) {
    auto skills = skill_blocks(doc);
    for (auto& b : toml_blocks(doc)) {
      ++checked;
      if (b.kind == "fragment") {
        auto parsed = hearth::workflows::parse_toml(b.text, b.where);
        std::string why = parsed.ok() ? "" : parsed.message();
        BOOST_TEST(parsed.ok(), b.where << ": a fragment that is not valid TOML: " << why);
      } else if (b.kind == "broken") {
        auto o = validate(b.text);
        BOOST_TEST(o.exit_code != 0, b.where << ": marked broken, but hearth validate accepts it");
      } else {
        BOOST_TEST(b.kind.empty(), b.where << ": unknown kind of toml block '" << b.kind << "'");
        auto o = validate(b.text, skills);
        BOOST_TEST(o.exit_code == 0, b.where << ": hearth validate refuses the example:\n" << o.out << o.err);
      }
    }
  }
  BOOST_TEST(checked >= 10);  // the docs hold examples; finding none means the scan broke
}

// An error message that sends the user to a section must send them somewhere
// real: every docs_link("page.md", "Heading") in the sources names a page of
// docs/ with a heading of that title.
BOOST_AUTO_TEST_CASE(every_link_in_an_error_message_names_a_real_section) {
  std::regex link(R"re(docs_link\(\s*"([^"]+)"\s*(?:,\s*"((?:[^"\\]|\\.)*)")?\s*\))re");
  int checked = 0;
  for (auto& e : fs::recursive_directory_iterator(source_root())) {
    auto ext = e.path().extension();
    if (ext != ".cpp" && ext != ".h") continue;
    auto rel = fs::relative(e.path(), source_root()).string();
    if (rel.rfind("build", 0) == 0 || rel.rfind("tests/", 0) == 0 || rel.rfind("subprojects/", 0) == 0) continue;
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    for (std::sregex_iterator it(text.begin(), text.end(), link), end; it != end; ++it) {
      std::string page = (*it)[1], heading = std::regex_replace((*it)[2].str(), std::regex(R"(\\(.))"), "$1");
      ++checked;
      std::ifstream doc(source_root() / "docs" / page);
      BOOST_TEST_REQUIRE(doc.good(), rel << ": docs_link names docs/" << page << ", which does not exist");
      if (heading.empty()) continue;
      bool found = false;
      for (std::string line; std::getline(doc, line);)
        if (line.rfind("#", 0) == 0 && line.substr(line.find_first_not_of('#')) == " " + heading) found = true;
      BOOST_TEST(found, rel << ": docs/" << page << " has no heading \"" << heading << "\"");
    }
  }
  BOOST_TEST(checked >= 3);  // the sandbox's refusals link; finding none means the scan broke
}

BOOST_AUTO_TEST_SUITE_END()
