// SKILL.md loading. yaml-cpp is used only here; its exceptions stop in
// parse_frontmatter(). ICU gives the Unicode rules the reference validator
// applies to names (NFKC, lowercase, letters and digits), through its C API:
// ICU is opened on first use (util/lazy/icu.cpp), not when hearth starts, and
// only for text that is not all ASCII (is_ascii below).
#include "workflows/skill.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "util/safe_open.h"

namespace hearth::workflows {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxSkillFileBytes = 4u << 20;
constexpr int kMaxNameChars = 64;
constexpr int kMaxDescriptionChars = 1024;
constexpr int kMaxCompatibilityChars = 500;
const std::set<std::string> kKnownFields = {"allowed-tools", "compatibility", "description",
                                            "license",       "metadata",      "name"};

// Where a problem is: "file:line:col: " or "file: ".
std::string at(const std::string& file, int line = 0, int col = 0) {
  if (line <= 0) return file + ": ";
  return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
}

// Text that is all ASCII needs no Unicode rules: it is its own NFKC form, its
// characters are its bytes, its letters and digits are [A-Za-z0-9], and it
// is lowercase when it has no A-Z (in every locale: a locale's rules differ
// only in what an uppercase letter becomes). Names and descriptions are
// nearly always ASCII, and checking them so spares a cold `hearth run` the
// opening of ICU (a millisecond and more, with libstdc++ and its data).
template <class Text>
bool is_ascii(const Text& s) {
  return std::all_of(s.begin(), s.end(), [](auto c) { return static_cast<std::uint32_t>(c) < 0x80; });
}

// UTF-8 to UTF-16; ill-formed bytes become U+FFFD. Never more UTF-16 units
// than UTF-8 bytes, so one pass fills the buffer.
std::u16string utf16(std::string_view s) {
  if (is_ascii(s)) return std::u16string(s.begin(), s.end());
  std::u16string out(s.size(), u'\0');
  int32_t length = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strFromUTF8WithSub(out.data(), static_cast<int32_t>(out.size()), &length, s.data(),
                       static_cast<int32_t>(s.size()), 0xFFFD, nullptr, &err);
  out.resize(U_FAILURE(err) ? 0 : static_cast<std::size_t>(length));
  return out;
}

// At most three UTF-8 bytes per UTF-16 unit.
std::string utf8(const std::u16string& u) {
  if (is_ascii(u)) return std::string(u.begin(), u.end());
  std::string out(u.size() * 3, '\0');
  int32_t length = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strToUTF8WithSub(out.data(), static_cast<int32_t>(out.size()), &length, u.data(), static_cast<int32_t>(u.size()),
                     0xFFFD, nullptr, &err);
  out.resize(U_FAILURE(err) ? 0 : static_cast<std::size_t>(length));
  return out;
}

// Runs an ICU transform that writes `fill(dest, capacity, &err)` and returns
// the length it needs: asks the length first, then fills. `fallback` on error.
template <class Fill>
std::u16string icu_transform(const std::u16string& fallback, Fill fill) {
  UErrorCode err = U_ZERO_ERROR;
  int32_t need = fill(nullptr, 0, &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return fallback;
  std::u16string out(static_cast<std::size_t>(need), u'\0');
  err = U_ZERO_ERROR;
  fill(out.data(), need, &err);
  return U_FAILURE(err) ? fallback : out;
}

std::u16string nfkc(const std::string& s) {
  std::u16string u = utf16(s);
  if (is_ascii(u)) return u;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFKCInstance(&err);
  if (U_FAILURE(err)) return u;
  return icu_transform(u, [&](UChar* dest, int32_t capacity, UErrorCode* e) {
    return unorm2_normalize(n, u.data(), static_cast<int32_t>(u.size()), dest, capacity, e);
  });
}

// Whether lowercasing by the default locale's rules leaves `u` as it is.
bool is_lowercase(const std::u16string& u) {
  if (is_ascii(u)) return std::none_of(u.begin(), u.end(), [](char16_t c) { return c >= u'A' && c <= u'Z'; });
  return icu_transform(u, [&](UChar* dest, int32_t capacity, UErrorCode* e) {
           return u_strToLower(dest, capacity, u.data(), static_cast<int32_t>(u.size()), nullptr, e);
         }) == u;
}

bool is_letter_or_digit(UChar32 c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return u_isalnum(c);
}

int code_points(const std::u16string& u) {
  if (is_ascii(u)) return static_cast<int>(u.size());
  return u_countChar32(u.data(), static_cast<int32_t>(u.size()));
}

// Characters as a user counts them (code points), not bytes.
int char_count(const std::string& s) { return code_points(utf16(s)); }

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// One line of `text` starting at `pos`, without its line break; advances pos.
std::string_view next_line(std::string_view text, std::size_t& pos) {
  auto nl = text.find('\n', pos);
  std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
  pos = nl == std::string_view::npos ? text.size() : nl + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool is_fence(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return line == "---";
}

struct Split {
  std::string yaml;  // frontmatter, starting on file line 2
  std::string body;
};

// Separates frontmatter and body, or says why it cannot.
std::optional<Split> split_frontmatter(std::string_view text, const std::string& file, SkillLoad& out) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  std::size_t pos = 0;
  if (!is_fence(next_line(text, pos))) {
    out.errors.push_back(at(file, 1, 1) + "SKILL.md must start with YAML frontmatter (---)");
    return std::nullopt;
  }
  std::size_t yaml_begin = pos;
  while (pos < text.size()) {
    std::size_t line_begin = pos;
    if (is_fence(next_line(text, pos))) {
      return Split{std::string(text.substr(yaml_begin, line_begin - yaml_begin)), trim(text.substr(pos))};
    }
  }
  out.errors.push_back(at(file, 1, 1) + "SKILL.md frontmatter not properly closed with --- (the opening --- has no closing line)");
  return std::nullopt;
}

// Line/column in the file of a YAML mark (frontmatter starts on line 2).
std::string at_mark(const std::string& file, const YAML::Mark& m) {
  if (m.is_null()) return at(file);
  return at(file, m.line + 2, m.column + 1);
}

// A plain scalar that YAML resolves to something other than a string.
bool plain_non_string(const YAML::Node& n) {
  if (n.Tag() != "?") return false;  // quoted or explicitly tagged
  const std::string& s = n.Scalar();
  static const std::set<std::string> words = {"true", "false", "True", "False", "TRUE", "FALSE",
                                              "yes", "no", "on", "off"};
  if (words.count(s)) return true;
  if (s.empty()) return false;
  if (!(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+' || s[0] == '.')) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

// A required string field: missing, null, non-scalar and non-string are errors.
std::optional<std::string> required_string(const YAML::Node& fm, const char* key, const std::string& file,
                                           SkillLoad& out) {
  YAML::Node n = fm[key];
  if (!n || n.IsNull()) {
    out.errors.push_back(at(file) + "Missing required field in frontmatter: " + key);
    return std::nullopt;
  }
  if (!n.IsScalar() || plain_non_string(n)) {
    out.errors.push_back(at_mark(file, n.Mark()) + "Field '" + key + "' must be a non-empty string");
    return std::nullopt;
  }
  return n.Scalar();
}

// An optional string field; a wrong type is a warning and the field is dropped.
std::optional<std::string> optional_string(const YAML::Node& fm, const char* key, const std::string& file,
                                           SkillLoad& out) {
  YAML::Node n = fm[key];
  if (!n || n.IsNull()) return std::nullopt;
  if (!n.IsScalar()) {
    out.warnings.push_back(at_mark(file, n.Mark()) + "Field '" + key + "' must be a string; ignored");
    return std::nullopt;
  }
  return n.Scalar();
}

void check_name(const std::string& raw, const YAML::Mark& mark, const std::string& file,
                const std::string& dir_name, Skill& skill, SkillLoad& out) {
  std::string where = at_mark(file, mark);
  std::u16string name = nfkc(trim(raw));
  std::string shown = utf8(name);
  if (name.empty()) {
    out.errors.push_back(where + "Field 'name' must be a non-empty string");
    return;
  }
  if (code_points(name) > kMaxNameChars) {
    out.errors.push_back(where + "Skill name '" + shown + "' exceeds " + std::to_string(kMaxNameChars) +
                         " character limit (" + std::to_string(code_points(name)) + " chars)");
  }
  if (!is_lowercase(name)) out.errors.push_back(where + "Skill name '" + shown + "' must be lowercase");
  if (name.front() == u'-' || name.back() == u'-') {
    out.errors.push_back(where + "Skill name cannot start or end with a hyphen");
  }
  if (name.find(u"--") != std::u16string::npos) {
    out.errors.push_back(where + "Skill name cannot contain consecutive hyphens");
  }
  const int32_t length = static_cast<int32_t>(name.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U16_NEXT(name.data(), i, length, c);
    if (c != '-' && !is_letter_or_digit(c)) {
      out.errors.push_back(where + "Skill name '" + shown +
                           "' contains invalid characters. Only letters, digits, and hyphens are allowed.");
      break;
    }
  }
  std::string dir = utf8(nfkc(dir_name));
  if (!dir_name.empty() && dir != shown) {
    out.errors.push_back(where + "Directory name '" + dir_name + "' must match skill name '" + shown + "'");
  }
  skill.name = shown;
}

void read_fields(const YAML::Node& fm, const std::string& file, const std::string& dir_name, Skill& skill,
                 SkillLoad& out) {
  if (auto name = required_string(fm, "name", file, out)) check_name(*name, fm["name"].Mark(), file, dir_name, skill, out);
  if (auto desc = required_string(fm, "description", file, out)) {
    std::string where = at_mark(file, fm["description"].Mark());
    skill.description = trim(*desc);
    int n = char_count(skill.description);
    if (n == 0) out.errors.push_back(where + "Field 'description' must be a non-empty string");
    if (n > kMaxDescriptionChars) {
      out.warnings.push_back(where + "Description exceeds " + std::to_string(kMaxDescriptionChars) +
                             " character limit (" + std::to_string(n) + " chars)");
    }
  }
  skill.license = optional_string(fm, "license", file, out);
  skill.compatibility = optional_string(fm, "compatibility", file, out);
  if (skill.compatibility) {
    int n = char_count(*skill.compatibility);
    std::string where = at_mark(file, fm["compatibility"].Mark());
    if (n > kMaxCompatibilityChars) {
      out.warnings.push_back(where + "Compatibility exceeds " + std::to_string(kMaxCompatibilityChars) +
                             " character limit (" + std::to_string(n) + " chars)");
    } else if (n == 0) {
      out.warnings.push_back(where + "Field 'compatibility' must be 1-500 characters when given");
    }
  }
  if (auto tools = optional_string(fm, "allowed-tools", file, out)) {
    std::istringstream in(*tools);
    for (std::string t; in >> t;) skill.allowed_tools.push_back(t);
  }
  if (YAML::Node md = fm["metadata"]; md && !md.IsNull()) {
    if (!md.IsMap()) {
      out.warnings.push_back(at_mark(file, md.Mark()) + "Field 'metadata' must be a mapping of strings; ignored");
    } else {
      for (const auto& kv : md) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
          out.warnings.push_back(at_mark(file, kv.first.Mark()) +
                                 "metadata values must be strings; entry ignored");
          continue;
        }
        skill.metadata[kv.first.Scalar()] = kv.second.Scalar();
      }
    }
  }
  std::vector<std::string> unknown;
  for (const auto& kv : fm) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (!kKnownFields.count(key)) unknown.push_back(key);
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    std::string list;
    for (const auto& k : unknown) list += (list.empty() ? "" : ", ") + k;
    out.warnings.push_back(at(file) + "Unexpected fields in frontmatter: " + list +
                           ". Only ['allowed-tools', 'compatibility', 'description', 'license', 'metadata', "
                           "'name'] are allowed.");
  }
}

// Parses the frontmatter YAML into a mapping node, or records why not.
std::optional<YAML::Node> parse_frontmatter(const std::string& yaml, const std::string& file, SkillLoad& out) {
  try {
    YAML::Node fm = YAML::Load(yaml);
    if (!fm.IsMap()) {
      out.errors.push_back(at(file, 2, 1) + "SKILL.md frontmatter must be a YAML mapping (key: value lines)");
      return std::nullopt;
    }
    return fm;
  } catch (const YAML::Exception& e) {
    out.errors.push_back(at_mark(file, e.mark) + "Invalid YAML in frontmatter: " + e.msg);
  } catch (const std::exception& e) {
    out.errors.push_back(at(file) + "Invalid YAML in frontmatter: " + e.what());
  }
  return std::nullopt;
}

// Whether `p` (canonical) is `root` (canonical) or inside it.
bool inside(const fs::path& p, const fs::path& root) {
  auto [ri, pi] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return ri == root.end();
}

void list_files(Skill& skill, const std::string& skill_file_name) {
  std::error_code ec;
  fs::path root = fs::canonical(skill.dir, ec);
  if (ec) return;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    std::string name = e.path().filename().string();
    if (e.is_directory(ec) && !e.is_symlink(ec) && (name == ".git" || name == "node_modules")) {
      it.disable_recursion_pending();
      continue;
    }
    fs::path rel = e.path().lexically_relative(root);
    if (it.depth() == 0 && name == skill_file_name) continue;
    if (e.is_symlink(ec)) {
      fs::path target = fs::canonical(e.path(), ec);
      if (ec || !inside(target, root) || !fs::is_regular_file(target, ec)) { ec.clear(); continue; }
    } else if (!e.is_regular_file(ec)) {
      continue;
    }
    if (skill.files.size() >= kMaxListedFiles) {
      skill.files_truncated = true;
      break;
    }
    std::uint64_t size = fs::file_size(e.path(), ec);
    skill.files.push_back({rel.generic_string(), ec ? 0 : size});
    ec.clear();
  }
  std::sort(skill.files.begin(), skill.files.end(),
            [](const SkillFile& a, const SkillFile& b) { return a.path < b.path; });
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

SkillLoad parse_skill_text(std::string_view text, const std::string& file, const std::string& dir_name) {
  SkillLoad out;
  auto split = split_frontmatter(text, file, out);
  if (!split) return out;
  auto fm = parse_frontmatter(split->yaml, file, out);
  if (!fm) return out;
  Skill skill;
  read_fields(*fm, file, dir_name, skill, out);
  if (!out.ok()) return out;
  skill.body = std::move(split->body);
  skill.file = file;
  skill.text = std::string(text);
  out.skill = std::move(skill);
  return out;
}

SkillLoad load_skill(const std::string& dir) {
  SkillLoad out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    out.errors.push_back(at(dir) + "skill folder not found");
    return out;
  }
  // SKILL.md is preferred; skill.md is accepted (as the reference parser does).
  // A step can write the folder (.agents/skills is in the workspace): the
  // file is read beneath the folder without following a symlink, only as a
  // regular file of its own, at most kMaxSkillFileBytes (util/safe_open.h).
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) {
    out.errors.push_back(at(dir) + "cannot open the skill folder: " + std::strerror(errno));
    return out;
  }
  std::string file_name, text;
  for (const char* candidate : {"SKILL.md", "skill.md"}) {
    std::string path = (fs::path(dir) / candidate).string();
    auto read = read_regular_beneath(dir_fd.get(), candidate, kMaxSkillFileBytes);
    if (!read) {
      // The size limit has its own advice; anything else is a refusal.
      bool too_big = read.message().find("larger than") != std::string::npos;
      out.errors.push_back(at(path) + (too_big ? "SKILL.md is larger than 4 MiB; move material into references/"
                                               : "refused: " + read.message() +
                                                     " (a skill's file is read only as a regular file in its folder)"));
      return out;
    }
    if (!*read) continue;
    file_name = candidate;
    text = std::move(**read);
    break;
  }
  if (file_name.empty()) {
    out.errors.push_back(at(dir) + "Missing required file: SKILL.md (SKILL.md not found in the skill folder)");
    return out;
  }
  std::string file = (fs::path(dir) / file_name).string();
  std::string dir_name = fs::path(dir).lexically_normal().filename().string();
  if (dir_name.empty()) dir_name = fs::path(dir).lexically_normal().parent_path().filename().string();
  out = parse_skill_text(text, file, dir_name);
  if (out.skill) {
    out.skill->dir = dir;
    list_files(*out.skill, file_name);
  }
  return out;
}

SkillLoad find_skill(const std::string& repo, const std::string& name) {
  SkillLoad out;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    out.errors.push_back("skill '" + name + "': a skill name is one folder name (no '/', not '.' or '..')");
    return out;
  }
  std::error_code ec;
  fs::path root = fs::canonical(repo, ec);
  if (ec) {
    out.errors.push_back(at(repo) + "repository folder not found");
    return out;
  }
  const fs::path places[] = {fs::path(repo) / ".hearth" / "skills" / name, fs::path(repo) / ".agents" / "skills" / name};
  for (const auto& dir : places) {
    if (!fs::exists(fs::symlink_status(dir, ec))) continue;
    fs::path real = fs::canonical(dir, ec);
    if (ec) {
      out.errors.push_back(at(dir.string()) + "skill folder cannot be resolved: " + ec.message());
      return out;
    }
    if (!inside(real, root)) {
      out.errors.push_back(at(dir.string()) + "skill folder leads outside the repository (symlink to '" +
                           real.string() + "'); refused");
      return out;
    }
    return load_skill(dir.string());
  }
  out.errors.push_back("skill '" + name + "' not found: looked for " + places[0].string() + "/SKILL.md and " +
                       places[1].string() + "/SKILL.md");
  return out;
}

std::vector<std::string> validate_skill(const std::string& dir) {
  SkillLoad r = load_skill(dir);
  std::vector<std::string> all = r.errors;
  all.insert(all.end(), r.warnings.begin(), r.warnings.end());
  return all;
}

std::string skill_instructions(const Skill& skill, std::string_view location, std::string_view with_json) {
  std::string out = "<skill name=\"" + xml_escape(skill.name) + "\">\n" + skill.body + "\n</skill>\n";
  out += "\nSkill folder: " + std::string(location) +
         " (relative paths in the skill's instructions are relative to this folder).\n";
  if (!skill.files.empty()) {
    out += "Files of the skill (read them when the instructions call for them):\n";
    for (const auto& f : skill.files) out += "- " + std::string(location) + "/" + f.path + "\n";
    if (skill.files_truncated) out += "- (more files not listed)\n";
  }
  if (!with_json.empty()) out += "\nArguments of this step (JSON):\n```json\n" + std::string(with_json) + "\n```\n";
  return out;
}

std::string skill_catalog(const std::vector<Skill>& skills) {
  std::string out = "<available_skills>\n";
  for (const auto& s : skills) {
    out += "<skill>\n<name>\n" + xml_escape(s.name) + "\n</name>\n<description>\n" + xml_escape(s.description) +
           "\n</description>\n<location>\n" + xml_escape(s.file) + "\n</location>\n</skill>\n";
  }
  return out + "</available_skills>";
}

}  // namespace hearth::workflows
