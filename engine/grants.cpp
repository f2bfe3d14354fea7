#include "engine/grants.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "commands/program_config.h"
#include "util/companion.h"

namespace hearth::engine {

namespace fs = std::filesystem;

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

// Writes `text` to a new file only the engine's uid can read.
Status write_private(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"cannot create " + path + ": " + std::strerror(errno)};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Error{"cannot write " + path};
  return {};
}

}  // namespace

std::string find_shim() { return find_companion("HEARTH_SHIM", "hearth-shim", "commands"); }

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

SecretValues read_declared_secrets(const workflows::Workflow& wf) {
  SecretValues values;
  for (auto& secret : secret_names(wf))
    if (const char* v = std::getenv(secret.c_str()); v && *v) values.emplace(secret, v);
  return values;
}

std::shared_ptr<const commands::SecretSet> workflow_secrets(const SecretValues& values) {
  auto set = std::make_shared<commands::SecretSet>();
  for (auto& [name, value] : values) (void)set->add(name, value);  // short ones: refused at use
  return set;
}

std::string current_branch(const std::string& workspace) {
  std::ifstream in(fs::path(workspace) / ".git" / "HEAD");
  std::string line;
  if (!std::getline(in, line)) return "";
  const std::string prefix = "ref: refs/heads/";
  if (line.rfind(prefix, 0) != 0) return "";
  std::string branch = line.substr(prefix.size());
  // The step writes HEAD: a "branch" that reads as an option or a revision
  // expression (`--upload-pack=...`, `@{-1}`) is no branch. A granted git
  // validates the name with git itself at each call (git_push.h).
  bool ok = !branch.empty() && branch[0] != '-' && branch.find("@{") == std::string::npos &&
            branch.find("..") == std::string::npos;
  for (unsigned char c : branch) ok = ok && c > 0x20 && c != 0x7f && std::string_view("~^:?*[\\").find(c) == std::string_view::npos;
  return ok ? branch : "";
}

Result<AttemptGrants> prepare_grants(const workflows::Workflow& wf, const workflows::Step& step, int attempt,
                                     const std::string& grants_root, const std::string& workspace,
                                     const std::string& shim_target, const nlohmann::json& ctx,
                                     const SecretValues& secret_values) {
  AttemptGrants g;
  g.dir = (fs::path(grants_root) / (step.id + "." + std::to_string(attempt))).string();
  g.socket = g.dir + "/commands.sock";
  g.bin_dir = g.dir + "/bin";
  g.private_dir = g.dir + ".private";
  auto secrets = std::make_shared<commands::SecretSet>();
  // What every granted program starts from: enough to find programs and its
  // own configuration, nothing else of the engine's environment.
  std::vector<std::string> base;
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"})
    if (const char* v = std::getenv(name)) base.push_back(std::string(name) + "=" + v);
  std::vector<std::pair<std::string, std::string>> private_files;  // path, contents: written with the directory
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
    std::string program_name = fs::path(*program).filename().string();
    bool constrained = program_name == "git" || program_name == "npm" || program_name == "gh";
    for (auto& v : def.env) {
      // For the programs Hearth knows, env chooses hosts, configuration and
      // helpers: it comes from the workflow alone, not from inputs or steps.
      if (constrained && !v.value.parsed.is_literal() && !(program_name == "gh" && v.name == "GH_REPO"))
        return Error{where + ": env '" + v.name + "' takes its value from ${{ }}, which a payload or a step controls; "
                     "for " + program_name + " write it literally (only gh's GH_REPO may use ${{ }}, checked against "
                     "the grant's host)"};
      auto text = v.value.parsed.render(ctx);
      if (!text) return Error{where + ": env '" + v.name + "': " + text.message()};
      set_env(c.env, v.name, *text);
    }
    if (program_name == "gh")
      if (auto s = commands::check_gh_env(c.env); !s.ok()) return Error{where + ": " + s.message()};
    if (program_name == "git") {
      harden_git(c.env);
      c.git = true;
      c.push = {def.remote, g.private_dir + "/git"};  // made below, with the directory
    }
    std::string npm_token;
    for (auto& s : def.secrets) {
      auto found = secret_values.find(s);
      if (found == secret_values.end())
        return Error{where + ": secret '" + s + "' is not set in the engine's environment (read when the run started)"};
      const std::string& value = found->second;
      if (auto st = secrets->add(s, value); !st.ok()) return Error{where + ": " + st.message()};
      if (program_name == "npm") npm_token = value;  // into the broker's npmrc, never npm's environment
      else set_env(c.env, s, value);
    }
    if (program_name == "npm") {
      if (def.secrets.size() > 1)
        return Error{where + ": npm takes one secret, the token of its registry (NPM_CONFIG_REGISTRY)"};
      if (!commands::env_value(c.env, "npm_config_userconfig", true).empty())
        return Error{where + ": env 'NPM_CONFIG_USERCONFIG': the broker writes npm's user configuration itself "
                     "(the registry and its token); give other settings as NPM_CONFIG_<KEY> in env"};
      auto config = commands::npm_userconfig(c.env, npm_token);
      if (!config) return Error{where + ": " + config.message()};
      std::string path = g.private_dir + "/npmrc." + name;
      private_files.push_back({path, *config});
      c.env = commands::npm_env(std::move(c.env), path);
      c.leading_args = {"--ignore-scripts"};
      c.refused_options = {"--ig", "--no-ig"};
      // npm reads the .npmrc of the package it runs in: refused while one is there.
      c.workspace_config_files = {".npmrc"};
    }
    g.broker.commands.push_back(std::move(c));
  }
  std::error_code ec;
  fs::remove_all(g.dir, ec);  // a previous engine's attempt of the same number
  fs::remove_all(g.private_dir, ec);
  fs::create_directories(g.bin_dir, ec);
  if (ec) return Error{"cannot create " + g.bin_dir + ": " + ec.message()};
  if (::mkdir(g.private_dir.c_str(), 0700) != 0)
    return Error{"cannot create " + g.private_dir + ": " + std::strerror(errno)};
  for (auto p = fs::path(g.dir); p != fs::path(grants_root).parent_path(); p = p.parent_path())
    ::chmod(p.c_str(), 0700);
  for (auto& [path, text] : private_files)
    if (auto s = write_private(path, text); !s.ok()) return s.error();
  for (auto& c : g.broker.commands)
    if (c.git && !fs::exists(c.push.git_dir))
      if (auto s = commands::make_push_git_dir(c.push.git_dir); !s.ok()) return s.error();
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
