// Where a program installed with Hearth (hearth-shim, hearth-stepbox) is.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace hearth {

/// `name` as a companion of the running executable: $`env_var` when set
/// (empty result when it is not executable), else beside the executable,
/// else in the build tree beside it (../`build_dir`/`name`), else
/// `installed` (where `meson install` put it). Empty when none exists.
inline std::string find_companion(const char* env_var, const std::string& name, const std::string& build_dir,
                                  const std::string& installed) {
  namespace fs = std::filesystem;
  auto executable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (const char* env = std::getenv(env_var); env && *env) return executable(env) ? env : "";
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto candidate : {self.parent_path() / name, self.parent_path().parent_path() / build_dir / name})
      if (executable(candidate)) return candidate.string();
  }
  if (!installed.empty() && executable(installed)) return installed;
  return "";
}

}  // namespace hearth
