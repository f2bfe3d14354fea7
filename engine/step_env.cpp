#include "engine/step_env.h"

#include <array>
#include <string_view>

extern char** environ;

namespace hearth::engine {

bool passed_to_local_steps(const std::string& name) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "LANG", "LANGUAGE", "TERM", "TZ", "SSL_CERT_FILE",
      "SSL_CERT_DIR", "LC_ALL"};
  for (auto n : kNames)
    if (name == n) return true;
  return name.rfind("LC_", 0) == 0 && name.size() > 3;
}

std::map<std::string, std::string> step_base_env(bool isolated) {
  if (isolated)
    return {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
            {"HOME", "/home/hearth"},
            {"LANG", "C.UTF-8"},
            {"TERM", "dumb"}};
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(kv.substr(0, eq));
    if (passed_to_local_steps(name)) env.emplace(std::move(name), std::string(kv.substr(eq + 1)));
  }
  return env;
}

}  // namespace hearth::engine
