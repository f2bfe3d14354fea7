#include "commands/paths.h"

#include <algorithm>

namespace hearth::commands {

namespace {

namespace fs = std::filesystem;

// Whether `p` (normalized, absolute) is `root` or below it.
bool inside(const fs::path& p, const fs::path& root) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end();
}

// The host path for `arg` (a path inside the sandbox), or an error when it
// leaves the workspace. What exists of it is resolved physically
// (weakly_canonical: the deepest existing ancestor, links followed).
Result<std::string> host_path(const std::string& arg, const fs::path& workspace, const fs::path& run_dir) {
  fs::path p(arg);
  fs::path candidate;
  if (p.is_absolute()) {
    fs::path rel = p.lexically_relative("/workspace");
    if (rel.empty() || *rel.begin() == "..")
      return Error{"the path '" + arg + "' is outside /workspace; granted commands may only read and write the workspace"};
    candidate = workspace / rel;
  } else {
    candidate = run_dir / p;
  }
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(candidate, ec);
  if (ec || !inside(resolved.lexically_normal(), workspace))
    return Error{"the path '" + arg + "' resolves outside the workspace; granted commands may only use files in it"};
  return p.is_absolute() ? resolved.string() : arg;
}

// Whether `v` must be checked as a path: absolute, with a `..` component,
// or whose first component exists from the call's directory (then what it
// names, or would create, may lie behind a link).
bool looks_like_path(const std::string& v, const fs::path& dir) {
  if (v.empty()) return false;
  if (v[0] == '/') return true;
  fs::path p(v);
  for (auto& part : p)
    if (part == "..") return true;
  std::error_code ec;
  return fs::symlink_status(dir / *p.begin(), ec).type() != fs::file_type::not_found && !ec;
}

// Checks `value`; on success rewrites `arg` to `prefix` + the host path.
Status check_one(std::string& arg, const std::string& prefix, const std::string& value, const fs::path& workspace,
                 const fs::path& run_dir) {
  if (!looks_like_path(value, run_dir)) return {};
  auto hp = host_path(value, workspace, run_dir);
  if (!hp) return hp.error();
  arg = prefix + *hp;
  return {};
}

}  // namespace

Result<fs::path> resolve_call_dir(const std::string& cwd, const fs::path& workspace) {
  fs::path rel = fs::path(cwd.empty() ? "." : cwd).lexically_normal();
  if (rel.is_absolute() || (!rel.empty() && *rel.begin() == ".."))
    return Error{"the working directory is outside the workspace"};
  std::error_code ec;
  fs::path physical = fs::canonical(workspace / rel, ec);
  if (ec || !fs::is_directory(physical, ec) || !inside(physical, workspace))
    return Error{"the working directory '" + cwd + "' resolves outside the workspace (or is no directory)"};
  return physical;
}

Status check_path_args(std::vector<std::string>& args, const fs::path& workspace, const fs::path& run_dir) {
  for (auto& a : args) {
    std::string original = a;
    if (a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      if (auto s = eq == std::string::npos ? check_one(a, "", a, workspace, run_dir)
                                          : check_one(a, a.substr(0, eq + 1), a.substr(eq + 1), workspace, run_dir);
          !s.ok())
        return s;
      continue;
    }
    if (auto s = check_one(a, "", original, workspace, run_dir); !s.ok()) return s;
    if (original.size() <= 2 || original[0] != '-') continue;
    // A value joined to short options: every place it could start, up to the
    // first absolute one (what follows is part of that path).
    for (size_t i = 2; i < original.size(); ++i) {
      size_t start = original[i] == '=' ? i + 1 : i;
      if (start >= original.size()) continue;
      std::string value = original.substr(start);
      if (auto s = check_one(a, original.substr(0, start), value, workspace, run_dir); !s.ok()) return s;
      if (value[0] == '/') break;
    }
  }
  return {};
}

std::optional<std::string> find_config_file(const std::vector<std::string>& files, const fs::path& workspace,
                                            const fs::path& run_dir) {
  if (files.empty()) return std::nullopt;
  for (fs::path dir = run_dir;; dir = dir.parent_path()) {
    for (auto& file : files) {
      std::error_code ec;
      if (fs::symlink_status(dir / file, ec).type() != fs::file_type::not_found)
        return (dir / file).lexically_relative(workspace).string();
    }
    if (!inside(dir, workspace) || dir == workspace || dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

}  // namespace hearth::commands
