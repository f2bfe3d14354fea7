// Private to sandbox/: where execvp would look for a program, on the PATH of
// the command's own environment (never the engine's).
#pragma once

#include <string>
#include <vector>

namespace hearth::sandbox {

/// The paths to try, in order: `name` itself when it holds a '/', else
/// <dir>/<name> for each directory of PATH in `env` (default
/// /usr/local/bin:/usr/bin:/bin; an empty entry is the current directory).
inline std::vector<std::string> program_candidates(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return {name};
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (auto& e : env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    out.push_back((dir.empty() ? "." : dir) + "/" + name);
    start = end + 1;
  }
  return out;
}

}  // namespace hearth::sandbox
