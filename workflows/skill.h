// Skills: a folder holding SKILL.md (the Agent Skills format) and any files
// beside it. SKILL.md is YAML frontmatter between two `---` lines, then a
// Markdown body: the instructions the agent gets.
//
//   .hearth/skills/<name>/SKILL.md   (looked up first)
//   .agents/skills/<name>/SKILL.md   (the cross-client convention)
//
// Loading never runs anything and never follows the skill out of its
// repository. Problems come in two grades:
//   errors   the skill cannot be used (no SKILL.md, broken frontmatter, a
//            missing or malformed name or description, a name that does not
//            match its folder); load_skill() returns no Skill.
//   warnings the spec's limits that do not change what runs (description over
//            1024 characters, compatibility over 500, fields the spec does not
//            define, non-string metadata values); the skill still loads, and
//            `strict` validation (validate_skill, as `skills-ref validate`)
//            counts them as errors.
// Messages read "path:line:col: message" where the YAML parser or the file
// gives a place, "path: message" otherwise. See docs/skills.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::workflows {

/// A file shipped with a skill, for progressive disclosure: the agent sees the
/// list and reads a file only when the instructions send it there.
struct SkillFile {
  std::string path;    // relative to the skill folder, '/'-separated ("scripts/run.py")
  std::uint64_t size = 0;
};

/// A loaded skill. Strings are as written in the frontmatter (YAML scalars).
struct Skill {
  std::string name;                                // frontmatter `name`
  std::string description;                         // frontmatter `description`
  std::optional<std::string> license;              // `license`
  std::optional<std::string> compatibility;        // `compatibility`
  std::map<std::string, std::string> metadata;     // `metadata` (values as written: 1.0 -> "1.0")
  std::vector<std::string> allowed_tools;          // `allowed-tools`, split at spaces
  std::string body;                                // Markdown after the closing `---`, trimmed
  std::string dir;                                 // the skill folder (as given or found)
  std::string file;                                // dir + "/SKILL.md" (or "skill.md")
  std::vector<SkillFile> files;                    // every other regular file, sorted by path
  bool files_truncated = false;                    // more than kMaxListedFiles were found
  std::string text;                                // the whole SKILL.md, for the run snapshot
};

/// How many bundled files a Skill lists at most (the rest are counted as truncated).
inline constexpr std::size_t kMaxListedFiles = 500;

struct SkillLoad {
  std::optional<Skill> skill;          // set when errors is empty
  std::vector<std::string> errors;     // the skill cannot be used
  std::vector<std::string> warnings;   // spec limits broken; the skill still loads
  bool ok() const { return errors.empty(); }
};

/// Parses SKILL.md text read from `file`, in a folder named `dir_name`
/// (which `name` must equal after NFKC normalisation). Fills everything
/// but `dir`, `file`'s folder listing (`files`). Never throws.
SkillLoad parse_skill_text(std::string_view text, const std::string& file, const std::string& dir_name);

/// Loads the skill in folder `dir`: finds SKILL.md (or skill.md), parses it,
/// and lists the bundled files (symlinks are listed as files only when they
/// stay inside `dir`; nothing is read). Never throws.
SkillLoad load_skill(const std::string& dir);

/// Finds skill `name` in repository `repo`: <repo>/.hearth/skills/<name>,
/// then <repo>/.agents/skills/<name>; loads the first folder that exists.
/// Refuses names that are not a single path component and skill folders that
/// resolve (through symlinks) outside `repo`. When neither folder exists, the
/// error names both places looked in.
SkillLoad find_skill(const std::string& repo, const std::string& name);

/// Strict validation, as the reference validator `skills-ref validate` does:
/// the errors and warnings of load_skill(dir), all as errors. Empty when valid.
std::vector<std::string> validate_skill(const std::string& dir);

/// The instructions the agent gets for a skill step: the body, where the
/// skill's files are (`location`: the folder as the agent's tools reach it,
/// e.g. ".hearth/skills/triage") and which exist, and the step's arguments
/// (`with_json`: a rendered JSON object, "" for none) in a fenced block.
std::string skill_instructions(const Skill& skill, std::string_view location, std::string_view with_json);

/// A catalog of skills in the `<available_skills>` form of the Agent Skills
/// client guide (name, description, location), XML-escaped: a description
/// cannot open or close a tag.
std::string skill_catalog(const std::vector<Skill>& skills);

}  // namespace hearth::workflows
