// Where a program shipped with Hearth (hearth-shim, hearth-stepbox) is.
// Nothing here is a path fixed at build time: an installed tree, a release
// tarball unpacked anywhere and the build tree all find their own helpers.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace hearth {

namespace detail {
inline void companion_anchor() {}
}  // namespace detail

/// `name` as a companion of the running code: $`env_var` when set (empty
/// result when it is not executable); else, next to the running executable,
/// the same directory, `../libexec/hearth/` (an installed tree or the release
/// tarball: bin/ beside libexec/) and the build tree's `../<build_dir>/`; else,
/// for an embedding program, `libexec/hearth/` beside the library holding this
/// code (`<libdir>/../libexec/hearth/`, also one level up for a multiarch
/// libdir). Empty when none exists.
inline std::string find_companion(const char* env_var, const std::string& name, const std::string& build_dir) {
  namespace fs = std::filesystem;
  auto executable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (const char* env = std::getenv(env_var); env && *env) return executable(env) ? env : "";
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = self.parent_path();
    for (auto candidate : {dir / name, dir.parent_path() / "libexec" / "hearth" / name, dir.parent_path() / build_dir / name})
      if (executable(candidate)) return candidate.string();
  }
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&detail::companion_anchor), &info) != 0 && info.dli_fname) {
    fs::path lib = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path();
    for (auto candidate : {lib.parent_path() / "libexec" / "hearth" / name,
                           lib.parent_path().parent_path() / "libexec" / "hearth" / name})
      if (executable(candidate)) return candidate.string();
  }
  return "";
}

}  // namespace hearth
