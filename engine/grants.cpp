#include "engine/grants.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "util/companion.h"

namespace hearth::engine {

namespace fs = std::filesystem;

#ifndef HEARTH_INSTALLED_SHIM
#define HEARTH_INSTALLED_SHIM ""
#endif

namespace {

bool executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// `exec` as the engine would run it: absolute as given, else the first
// executable of that name on the engine's PATH.
Result<std::string> resolve_program(const std::string& exec) {
  if (exec.find('/') != std::string::npos) {
    if (exec.front() != '/') return Error{"'" + exec + "' must be a bare program name or an absolute path"};
    if (!executable(exec)) return Error{exec + " is not an executable file"};
    return exec;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && dir.front() == '/' && executable(fs::path(dir) / exec)) return (fs::path(dir) / exec).string();
    start = end + 1;
  }
  return Error{"program '" + exec + "' is not on the engine's PATH"};
}

// git reads the workspace's own .git/config, which the sandboxed step can
// write. Settings that would run a program of the step's choosing on the
// host are pinned through GIT_CONFIG_COUNT, which overrides every config
// file; the command's own GIT_CONFIG_* entries (the workflow's, trusted)
// come after them, so a declared credential helper still applies.
void harden_git(std::vector<std::string>& env) {
  const std::vector<std::pair<std::string, std::string>> pinned = {
      {"core.hooksPath", "/dev/null"},  {"core.fsmonitor", "false"},  {"core.sshCommand", "ssh"},
      {"credential.helper", ""},        {"protocol.ext.allow", "never"}, {"core.askPass", ""},
      {"uploadpack.packObjectsHook", ""}};
  std::map<int, std::pair<std::string, std::string>> declared;  // index -> key, value
  std::vector<std::string> rest;
  for (auto& e : env) {
    auto eq = e.find('=');
    std::string name = e.substr(0, eq), value = eq == std::string::npos ? "" : e.substr(eq + 1);
    if (name.rfind("GIT_CONFIG_KEY_", 0) == 0) declared[std::atoi(name.c_str() + 15)].first = value;
    else if (name.rfind("GIT_CONFIG_VALUE_", 0) == 0) declared[std::atoi(name.c_str() + 17)].second = value;
    else if (name != "GIT_CONFIG_COUNT") rest.push_back(e);
  }
  env = std::move(rest);
  auto entries = pinned;
  for (auto& [i, kv] : declared) entries.push_back(kv);
  int count = 0;
  for (auto& [key, value] : entries) {
    env.push_back("GIT_CONFIG_KEY_" + std::to_string(count) + "=" + key);
    env.push_back("GIT_CONFIG_VALUE_" + std::to_string(count) + "=" + value);
    ++count;
  }
  env.push_back("GIT_CONFIG_COUNT=" + std::to_string(count));
  env.push_back("GIT_TERMINAL_PROMPT=0");
}

// Sets `name` in `env`, replacing the entry inherited from the engine: a
// program sees one value per name, the command's (glibc's getenv and Go's
// os.Getenv disagree on which of two duplicates wins).
void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::string prefix = name + "=";
  std::erase_if(env, [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
  env.push_back(prefix + value);
}

}  // namespace

std::string find_shim() { return find_companion("HEARTH_SHIM", "hearth-shim", "commands", HEARTH_INSTALLED_SHIM); }

std::vector<std::string> secret_names(const workflows::Workflow& wf) {
  std::vector<std::string> names;
  auto add = [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  for (auto& [name, def] : wf.commands)
    for (auto& secret : def.secrets) add(secret);
  for (auto& p : wf.proxies)
    for (auto& secret : p.secret_names()) add(secret);
  return names;
}

std::shared_ptr<const commands::SecretSet> workflow_secrets(const workflows::Workflow& wf) {
  auto set = std::make_shared<commands::SecretSet>();
  for (auto& secret : secret_names(wf))
    if (const char* v = std::getenv(secret.c_str()); v && *v) (void)set->add(secret, v);  // short ones: refused at use
  return set;
}

std::string current_branch(const std::string& workspace) {
  std::ifstream in(fs::path(workspace) / ".git" / "HEAD");
  std::string line;
  if (!std::getline(in, line)) return "";
  const std::string prefix = "ref: refs/heads/";
  return line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : "";
}

Result<AttemptGrants> prepare_grants(const workflows::Workflow& wf, const workflows::Step& step, int attempt,
                                     const std::string& grants_root, const std::string& workspace,
                                     const std::string& shim_target, const nlohmann::json& ctx) {
  AttemptGrants g;
  g.dir = (fs::path(grants_root) / (step.id + "." + std::to_string(attempt))).string();
  g.socket = g.dir + "/commands.sock";
  g.bin_dir = g.dir + "/bin";
  auto secrets = std::make_shared<commands::SecretSet>();
  // What every granted program starts from: enough to find programs and its
  // own configuration, nothing else of the engine's environment.
  std::vector<std::string> base;
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"})
    if (const char* v = std::getenv(name)) base.push_back(std::string(name) + "=" + v);
  for (auto& name : step.commands) {
    const workflows::CommandDef& def = wf.commands.at(name);
    std::string where = "[commands." + name + "]";
    if (def.host) {  // the engine's host answers it: no program, no environment (Run adds the handler)
      auto policy = commands::make_policy(name, def.allow, def.deny, def.presets, where);
      if (!policy) return policy.error();
      g.broker.commands.push_back({name, "", *policy, {}, def.timeout, {}, {}});
      continue;
    }
    auto program = resolve_program(def.exec);
    if (!program) return Error{where + ": " + program.message()};
    auto policy = commands::make_policy(name, def.allow, def.deny, def.presets, where);
    if (!policy) return policy.error();
    commands::GrantedCommand c{name, *program, *policy, base, def.timeout, {}};
    for (auto& v : def.env) {
      auto text = v.value.parsed.render(ctx);
      if (!text) return Error{where + ": env '" + v.name + "': " + text.message()};
      set_env(c.env, v.name, *text);
    }
    std::string program_name = fs::path(*program).filename().string();
    if (program_name == "git") harden_git(c.env);
    // npm reads the .npmrc of the package it runs in, where ${VAR} expands
    // from its environment: a step could route the secrets anywhere.
    if (program_name == "npm") c.workspace_config_files = {".npmrc"};
    for (auto& s : def.secrets) {
      const char* value = std::getenv(s.c_str());
      if (!value || !*value)
        return Error{where + ": secret '" + s + "' is not set in the engine's environment"};
      if (auto st = secrets->add(s, value); !st.ok()) return Error{where + ": " + st.message()};
      set_env(c.env, s, value);
    }
    g.broker.commands.push_back(std::move(c));
  }
  std::error_code ec;
  fs::remove_all(g.dir, ec);  // a previous engine's attempt of the same number
  fs::create_directories(g.bin_dir, ec);
  if (ec) return Error{"cannot create " + g.bin_dir + ": " + ec.message()};
  for (auto p = fs::path(g.dir); p != fs::path(grants_root).parent_path(); p = p.parent_path())
    ::chmod(p.c_str(), 0700);
  for (auto& name : step.commands) {
    fs::create_symlink(shim_target, fs::path(g.bin_dir) / name, ec);
    if (ec) return Error{"cannot link the shim for '" + name + "' in " + g.bin_dir + ": " + ec.message()};
  }
  g.broker.socket_path = g.socket;
  g.broker.workspace = workspace;
  g.broker.secrets = std::move(secrets);
  g.broker.context.branch = current_branch(workspace);
  return g;
}

}  // namespace hearth::engine
