// glob and grep: walks of the workspace that never follow a symlink. Each
// directory is opened relative to its parent's descriptor with O_NOFOLLOW, so
// a directory swapped for a symlink during the walk is refused, not entered.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "agent/tool_support.h"

namespace hearth::agent::detail {
namespace {

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b <= p.size()) {
    std::size_t e = p.find('/', b);
    if (e == std::string_view::npos) e = p.size();
    if (e > b) out.emplace_back(p.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// Segment-wise glob match: fnmatch(3) within a segment, "**" spans any number of segments.
bool match_segments(const std::vector<std::string>& pat, std::size_t pi, const std::vector<std::string>& path,
                    std::size_t si) {
  if (pi == pat.size()) return si == path.size();
  if (pat[pi] == "**") {
    for (std::size_t k = si; k <= path.size(); ++k)
      if (match_segments(pat, pi + 1, path, k)) return true;
    return false;
  }
  if (si == path.size()) return false;
  if (fnmatch(pat[pi].c_str(), path[si].c_str(), 0) != 0) return false;
  return match_segments(pat, pi + 1, path, si + 1);
}

struct Walk {
  const Workspace* ws = nullptr;
  std::string base;  // the walk's start, relative to the root
  std::size_t max_entries = 0;
  std::size_t visited = 0;
  bool capped = false;
  std::vector<std::string> files;  // relative to the walk's start, '/'-separated
};

// Collects the regular files under `dirfd` (which this function closes).
void walk_dir(int dirfd, const std::string& prefix, int depth, Walk& w) {
  DIR* d = fdopendir(dirfd);
  if (!d) {
    ::close(dirfd);
    return;
  }
  std::vector<std::pair<std::string, bool>> entries;  // name, is_dir
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (++w.visited > w.max_entries) {
      w.capped = true;
      break;
    }
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
    }
    if (type == DT_DIR && name != ".git" &&
        !w.ws->hidden(w.base == "." ? (prefix.empty() ? name : prefix + "/" + name)
                                    : w.base + "/" + (prefix.empty() ? name : prefix + "/" + name)))
      entries.emplace_back(name, true);
    if (type == DT_REG) entries.emplace_back(name, false);
  }
  for (const auto& [name, is_dir] : entries) {
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    if (!is_dir) {
      w.files.push_back(rel);
    } else if (depth < 64 && !w.capped) {
      int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) walk_dir(sub, rel, depth + 1, w);  // a symlink swapped in fails with ELOOP/ENOTDIR
    }
  }
  closedir(d);
}

// Opens the directory `rel` and walks it. Errors name the path.
Result<Walk> walk(const Workspace& ws, const std::string& rel, std::size_t max_entries) {
  int fd = ws.open_at(rel, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Error{open_error(rel, -fd)};
  Walk w;
  w.ws = &ws;
  w.base = rel;
  w.max_entries = max_entries;
  walk_dir(fd, "", 0, w);
  std::sort(w.files.begin(), w.files.end());
  return w;
}

std::string join(const std::string& base, const std::string& rel) { return base == "." ? rel : base + "/" + rel; }

using Code = std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)>;
using MatchData = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;
using MatchContext = std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)>;

}  // namespace

ToolResult glob_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& json) {
  Args a("glob", json, {"pattern", "path"});
  auto pattern = a.string("pattern", true);
  auto path = a.string("path", false);
  if (!a.ok()) return a.error();
  if (pattern->empty()) return {"glob: field 'pattern' is empty", true};
  if ((*pattern)[0] == '/') return {"glob: field 'pattern' must be relative (to 'path', default the workspace root)", true};
  auto pat = split_path(*pattern);
  for (const auto& s : pat)
    if (s == "..") return {"glob: field 'pattern' must not contain '..'", true};
  auto rel = ws.relative(path.value_or("."));
  if (!rel) return {"glob: " + rel.message(), true};
  auto w = walk(ws, *rel, limits.walk_max_entries);
  if (!w) return {"glob: " + w.message(), true};
  std::string out;
  std::size_t n = 0, more = 0;
  for (const auto& f : w->files) {
    if (!match_segments(pat, 0, split_path(f), 0)) continue;
    if (n == limits.glob_max_results) {
      ++more;
      continue;
    }
    out += valid_utf8(join(*rel, f)) + "\n";
    ++n;
  }
  if (n == 0) out = "no files match '" + valid_utf8(*pattern) + "' in " + *rel + "\n";
  if (more) out += "[truncated: " + std::to_string(more) + " more files match; narrow the pattern]\n";
  if (w->capped) out += "[note: the walk stopped after " + std::to_string(limits.walk_max_entries) + " entries]\n";
  return {out, false};
}

ToolResult grep_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& json) {
  Args a("grep", json, {"pattern", "path", "glob", "case_insensitive", "max_results"});
  auto pattern = a.string("pattern", true);
  auto path = a.string("path", false);
  auto glob = a.string("glob", false);
  bool nocase = a.boolean("case_insensitive", false);
  auto max = a.integer("max_results", 1, 2000);
  if (!a.ok()) return a.error();
  std::size_t cap = max ? static_cast<std::size_t>(*max) : limits.grep_max_results;

  int err = 0;
  PCRE2_SIZE err_at = 0;
  uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (nocase ? PCRE2_CASELESS : 0);
  Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern->data()), pattern->size(), opts, &err, &err_at, nullptr),
            pcre2_code_free);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return {"grep: field 'pattern' is not a valid regular expression at offset " + std::to_string(err_at) + ": " +
                reinterpret_cast<const char*>(msg),
            true};
  }
  pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without it
  MatchData md(pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
  MatchContext mc(pcre2_match_context_create(nullptr), pcre2_match_context_free);
  pcre2_set_match_limit(mc.get(), 1'000'000);  // a pathological pattern fails instead of running for hours
  pcre2_set_depth_limit(mc.get(), 10'000);

  auto rel = ws.relative(path.value_or("."));
  if (!rel) return {"grep: " + rel.message(), true};
  std::vector<std::string> files;
  bool capped_walk = false;
  int probe = ws.open_at(*rel, O_RDONLY | O_DIRECTORY);
  if (probe >= 0) {
    ::close(probe);
    auto w = walk(ws, *rel, limits.walk_max_entries);
    if (!w) return {"grep: " + w.message(), true};
    capped_walk = w->capped;
    auto pat = glob ? split_path(*glob) : std::vector<std::string>{};
    bool basename_only = glob && glob->find('/') == std::string::npos;
    for (const auto& f : w->files) {
      if (glob) {
        auto segs = split_path(f);
        bool ok = basename_only ? fnmatch(glob->c_str(), segs.back().c_str(), 0) == 0 : match_segments(pat, 0, segs, 0);
        if (!ok) continue;
      }
      files.push_back(join(*rel, f));
    }
  } else if (probe == -ENOTDIR) {
    files.push_back(*rel);
  } else {
    return {"grep: " + open_error(*rel, -probe), true};
  }

  std::string out;
  std::size_t hits = 0, binary = 0, large = 0;
  bool more = false, too_complex = false;
  for (const auto& f : files) {
    if (more || too_complex) break;
    bool is_large = false, is_binary = false;
    auto data = read_file(ws, f, limits.grep_file_max_bytes, {true, true, &is_large, &is_binary});
    if (!data) continue;  // vanished or not regular since the walk
    if (is_large || data->size() > limits.grep_file_max_bytes) { ++large; continue; }
    if (is_binary || looks_binary(*data)) { ++binary; continue; }
    const std::string& text = *data;
    std::size_t line = 1;
    for (std::size_t pos = 0; pos < text.size(); ++line) {
      std::size_t nl = text.find('\n', pos);
      std::size_t end = nl == std::string::npos ? text.size() : nl;
      int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(text.data() + pos), end - pos, 0, 0, md.get(),
                           mc.get());
      if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) { too_complex = true; break; }
      if (rc >= 0) {
        if (hits == cap) { more = true; break; }
        std::string_view body(text.data() + pos, end - pos);
        if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
        std::string cut;
        if (body.size() > 500) { cut = " [... line cut]"; body = body.substr(0, 500); }
        out += valid_utf8(f) + ":" + std::to_string(line) + ": " + valid_utf8(body) + cut + "\n";
        ++hits;
      }
      pos = nl == std::string::npos ? text.size() : nl + 1;
    }
  }
  if (hits == 0 && !too_complex) out = "no matches for '" + valid_utf8(*pattern) + "' in " + *rel + "\n";
  if (more) out += "[truncated: stopped at " + std::to_string(cap) + " matching lines; narrow the pattern, path or glob]\n";
  if (too_complex) out += "[stopped: the pattern is too complex for the match limit; simplify it]\n";
  if (binary) out += "[note: " + std::to_string(binary) + " binary files skipped]\n";
  if (large) out += "[note: " + std::to_string(large) + " files larger than " + std::to_string(limits.grep_file_max_bytes) + " bytes skipped]\n";
  if (capped_walk) out += "[note: the walk stopped after " + std::to_string(limits.walk_max_entries) + " entries]\n";
  return {out, too_complex && hits == 0};
}

}  // namespace hearth::agent::detail
