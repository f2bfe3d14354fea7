#include "commands/program_config.h"

#include <algorithm>
#include <cctype>

namespace hearth::commands {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool repo_part(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = s.find(sep, start)) != std::string::npos; start = at + 1) out.push_back(s.substr(start, at - start));
  out.push_back(s.substr(start));
  return out;
}

bool loopback_http(const std::string& url) {
  for (const char* p : {"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/", "http://[::1]"})
    if (url.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

std::string env_value(const std::vector<std::string>& env, const std::string& name, bool any_case) {
  for (auto& e : env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos) continue;
    std::string n = e.substr(0, eq);
    if (any_case ? lower(n) == lower(name) : n == name) return e.substr(eq + 1);
  }
  return "";
}

Status check_gh_env(const std::vector<std::string>& env) {
  std::string host = env_value(env, "GH_HOST");
  std::string repo = env_value(env, "GH_REPO");
  std::string grant_host = host.empty() ? "github.com" : host;
  if (repo.empty()) return {};
  auto parts = split(repo, '/');
  bool ok = (parts.size() == 2 && repo_part(parts[0]) && repo_part(parts[1])) ||
            (parts.size() == 3 && lower(parts[0]) == lower(grant_host) && repo_part(parts[1]) && repo_part(parts[2]));
  if (ok) return {};
  return Error{"env 'GH_REPO' is '" + repo + "', which is not OWNER/REPO on the grant's host '" + grant_host +
               "' (GH_HOST): gh would send its token wherever GH_REPO points"};
}

Result<std::string> npm_userconfig(const std::vector<std::string>& env, const std::string& token) {
  std::string registry = env_value(env, "npm_config_registry", true);
  if (registry.empty()) {
    if (token.empty()) return std::string();
    return Error{"give the registry the token is for as NPM_CONFIG_REGISTRY in env (https://...)"};
  }
  if (registry.rfind("https://", 0) != 0 && !loopback_http(registry))
    return Error{"NPM_CONFIG_REGISTRY '" + registry + "' is not an https:// URL"};
  if (registry.find_first_of("\r\n ") != std::string::npos || registry.find("${") != std::string::npos)
    return Error{"NPM_CONFIG_REGISTRY holds a space, a line break or '${'"};
  if (registry.back() != '/') registry += '/';
  std::string out = "registry=" + registry + "\n";
  if (token.empty()) return out;
  if (token.find_first_of("\r\n") != std::string::npos || token.find("${") != std::string::npos)
    return Error{"the npm token holds a line break or '${', which npm's configuration cannot carry literally"};
  // npm sends a token only to URLs under the key's host and path ("nerf dart").
  std::string key = registry.substr(registry.find("//"));
  return out + key + ":_authToken=" + token + "\n";
}

std::vector<std::string> npm_env(std::vector<std::string> env, const std::string& userconfig) {
  std::erase_if(env, [](const std::string& e) {
    std::string n = lower(e.substr(0, e.find('=')));
    return n == "npm_config_userconfig" || n == "npm_config_ignore_scripts";
  });
  env.push_back("npm_config_userconfig=" + userconfig);
  env.push_back("npm_config_ignore_scripts=true");
  return env;
}

}  // namespace hearth::commands
