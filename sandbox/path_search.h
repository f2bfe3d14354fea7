// Private to sandbox/: paths as an isolated command sees them. Where execvp
// would look for a program, on the PATH of the command's own environment
// (never the engine's); where the command starts.
#pragma once

#include <string>

#include "sandbox/sandbox.h"
#include "util/status.h"
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

/// Where a command starts inside a namespace sandbox: a host path under the
/// workspace `ws` moves to the same place under /workspace; anything else is
/// already an inside path (empty: /workspace).
inline Result<std::string> inside_cwd(const std::string& host_cwd, const std::string& ws) {
  std::string cwd = host_cwd.empty() ? kWorkspaceInside : host_cwd;
  if (!ws.empty()) {
    std::string root = ws.back() == '/' ? ws.substr(0, ws.size() - 1) : ws;
    if (cwd == root) return std::string(kWorkspaceInside);
    if (cwd.rfind(root + "/", 0) == 0) return kWorkspaceInside + cwd.substr(root.size());
  }
  if (cwd.empty() || cwd[0] != '/') return Error{"working directory '" + cwd + "' is not an absolute path"};
  return cwd;
}

}  // namespace hearth::sandbox
