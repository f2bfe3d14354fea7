// The workflow's tables other than [[steps]]: [on], [inputs], [env],
// [sandbox], [commands.*] and [tools.*] (the Loader class: loader_impl.h).
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "commands/git_push.h"
#include "commands/policy.h"
#include "sandbox/sizes.h"
#include "workflows/duration.h"
#include "workflows/loader_impl.h"
#include "workflows/suggest.h"

namespace hearth::workflows {

namespace {

const std::vector<std::string> kCommandKeys = {"exec", "secrets", "env", "allow", "deny", "preset", "timeout", "host", "remote"};
const std::vector<std::string> kToolKeys = {"host"};
const std::vector<std::string> kSandboxKeys = {"kind", "workspace", "ref", "network", "egress", "memory", "pids", "cpus"};
const std::vector<std::string> kOnKeys = {"github"};

}  // namespace

void Loader::read_sandbox(const toml::table& t) {
  check_keys(t, kSandboxKeys, "[sandbox]");
  auto& sb = wf_.sandbox;
  sb.location = location_of(t.source());
  one_of(t, "kind", {"namespace", "local"}, sb.kind);
  one_of(t, "workspace", {"repo", "empty", "checkout"}, sb.workspace);
  if (auto ref = get_string(t, "ref", "[sandbox]")) {
    if (sb.workspace != "checkout")
      error(*t.get("ref"), "'ref' in [sandbox] applies to workspace = \"checkout\" only (workspace is \"" +
                               sb.workspace + "\")");
    else if (ref->empty() || ref->front() == '-')
      error(*t.get("ref"), "'ref' in [sandbox] must name a branch, tag or commit, not '" + *ref + "'");
    else sb.ref = *ref;
  }
  one_of(t, "network", {"none", "proxies", "host"}, sb.network);
  if (auto m = get_string(t, "memory", "[sandbox]")) {
    auto bytes = sandbox::parse_size(*m);
    if (!bytes) error(*t.get("memory"), "'memory' in [sandbox]: " + bytes.message());
    else sb.memory_bytes = *bytes;
  }
  if (auto* n = expect(t, "pids", toml::node_type::integer, "a whole number", "[sandbox]")) {
    int64_t v = n->as_integer()->get();
    if (v < 1) error(*n, "'pids' in [sandbox] must be at least 1, not " + std::to_string(v));
    else sb.pids = static_cast<uint64_t>(v);
  }
  if (auto* n = t.get("cpus")) {
    std::optional<double> v;
    if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    else if (n->is_floating_point()) v = n->as_floating_point()->get();
    if (!v || *v <= 0) error(*n, "'cpus' in [sandbox] must be a positive number (like 0.5 or 2)");
    else sb.cpus = *v;
  }
}

bool Loader::is_event_name(const std::string& s) {
  auto word = [](std::string_view w) {
    return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  };
  auto dot = s.find('.');
  if (dot == std::string::npos) return word(s);
  return word(std::string_view(s).substr(0, dot)) && word(std::string_view(s).substr(dot + 1));
}

void Loader::read_on(const toml::table& on) {
  check_keys(on, kOnKeys, "[on]");
  if (auto* g = on.get("github")) {
    std::vector<std::string> events = string_list(*g, "'github' in [on]");
    for (size_t i = 0; i < events.size(); ++i) {
      if (!is_event_name(events[i])) {
        const toml::node* at = g->is_array() ? g->as_array()->get(i) : g;
        error(at ? *at : *g, "'" + events[i] + "' in [on] github is not a GitHub event: write the event "
              "('push', 'pull_request') or event.action ('issues.opened'), in lower case");
      }
    }
    wf_.on_github = std::move(events);
  }
}

void Loader::read_command(const std::string& name, const toml::node& n) {
  std::string where = "[commands." + name + "]";
  auto* t = n.as_table();
  if (!t) return error(n, where + " must be a table, not " + type_name(n));
  check_keys(*t, kCommandKeys, where);
  CommandDef def;
  def.name = name;
  def.location = location_of(n.source());
  def.exec = get_string(*t, "exec", where).value_or(name);
  if (auto* h = expect(*t, "host", toml::node_type::boolean, "true or false", where)) def.host = h->as_boolean()->get();
  if (def.host)
    for (const char* key : {"exec", "secrets", "env", "preset"})
      if (auto* k = t->get(key))
        error(*k, "'" + std::string(key) + "' of " + where + " does not apply to a command the embedding program "
                  "implements (host = true): it runs no program; its handler has what it needs");
  if (auto* s = t->get("secrets")) def.secrets = string_list(*s, "'secrets' in " + where);
  for (auto& v : def.secrets) {
    bool ok = !v.empty() && !std::isdigit(static_cast<unsigned char>(v[0]));
    for (char ch : v) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!ok) error(*t->get("secrets"), "'" + v + "' in 'secrets' of " + where + " is not an environment variable name");
  }
  bool name_ok = !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
  if (!name_ok) error(n, where + ": a command's name must be a plain file name (it is put on the step's PATH)");
  if (auto* e = expect(*t, "env", toml::node_type::table, "a table", where))
    def.env = read_env(*e->as_table(), where, "env of " + where);
  for (auto& v : def.env)
    for (auto& s : def.secrets)
      if (v.name == s) error(v.value.location, "'" + s + "' is both a secret and in 'env' of " + where);
  if (auto* a = t->get("allow")) def.allow = string_list(*a, "'allow' of " + where);
  if (auto* d = t->get("deny")) def.deny = string_list(*d, "'deny' of " + where);
  if (auto* p = t->get("preset")) def.presets = string_list(*p, "'preset' of " + where);
  if (auto* r = expect(*t, "remote", toml::node_type::string, "a URL string", where)) {
    def.remote = r->as_string()->get();
    if (std::filesystem::path(def.exec).filename() != "git")
      error(*r, "'remote' of " + where + " applies to a command whose program is git");
    else if (auto s = commands::check_remote_url(def.remote); !s.ok())
      error(*r, "'remote' of " + where + ": " + s.message());
  }
  if (def.allow.empty() && def.presets.empty())
    error(n, where + " allows nothing: add 'allow' patterns or a 'preset' (docs/commands.md)");
  auto policy = commands::make_policy(name, def.allow, def.deny, def.presets, where);
  if (!policy) error(n, policy.message());
  if (auto* to = t->get("timeout")) {
    auto* seconds = to->as_integer();
    if (seconds && seconds->get() > 0) {
      def.timeout = std::chrono::seconds(seconds->get());
    } else if (to->is_string()) {
      auto d = parse_duration(to->as_string()->get());
      if (d) def.timeout = *d;
      else error(*to, "'timeout' of " + where + ": " + d.message());
    } else {
      error(*to, "'timeout' of " + where + " must be a duration string like \"60s\" or a positive number of seconds");
    }
  }
  wf_.commands.emplace(name, std::move(def));
}

void Loader::read_tool(const std::string& name, const toml::node& n) {
  std::string where = "[tools." + name + "]";
  auto* t = n.as_table();
  if (!t) return error(n, where + " must be a table, not " + type_name(n));
  check_keys(*t, kToolKeys, where);
  ToolDef def{name, location_of(n.source())};
  bool name_ok = !name.empty() && name.size() <= 64;
  for (char ch : name) name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
  if (!name_ok) error(n, where + ": a tool's name must be 1 to 64 letters, digits, '_' or '-' (what models accept)");
  bool is_builtin =
      std::find(kAgentTools.begin(), kAgentTools.end(), name) != kAgentTools.end() || name == "submit_result";
  if (is_builtin)
    error(n, where + ": '" + name + "' is a built-in tool; give the host's tool another name");
  auto* h = t->get("host");
  bool host = h && h->as_boolean() && h->as_boolean()->get();
  if (!host)
    error(h ? *h : n, where + " needs host = true: a declared tool is implemented by the program embedding "
                      "Hearth (hearth::Engine::register_tool); docs/embedding.md");
  if (host && name_ok && !is_builtin) wf_.tools.emplace(name, std::move(def));
}

void Loader::read_inputs(const toml::table& inputs) {
  auto properties = nlohmann::json::object();
  auto required = nlohmann::json::array();
  for (auto&& [k, v] : inputs) {
    std::string name(k.str());
    auto* t = v.as_table();
    if (!t) {
      error(v, "input '" + name + "' must be a table of JSON Schema keywords (e.g. { type = \"string\" }), not " +
                   type_name(v));
      continue;
    }
    nlohmann::json prop = to_json(v);
    if (prop.contains("required")) {
      if (!prop["required"].is_boolean()) {
        error(*t->get("required"), "'required' of input '" + name + "' must be true or false");
      } else if (prop["required"].get<bool>()) {
        required.push_back(name);
      }
      prop.erase("required");
    }
    properties[name] = std::move(prop);
  }
  wf_.inputs = {{"type", "object"}, {"properties", properties}};
  if (!required.empty()) wf_.inputs["required"] = required;
}

std::vector<EnvVar> Loader::read_env(const toml::table& t, const std::string& where, const std::string& what) {
  std::vector<EnvVar> env;
  for (auto&& [k, v] : t) {
    std::string name(k.str());
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      error(location_of(k.source()), "invalid environment variable name '" + name + "' in " + where);
      continue;
    }
    if (v.is_string()) {
      if (auto tpl = templated(v, what + " '" + name + "'")) env.push_back({name, std::move(*tpl)});
    } else if (v.is_integer() || v.is_boolean() || v.is_floating_point()) {
      std::string s = to_json(v).dump();
      env.push_back({name, {s, *expr::Template::parse(s), location_of(v.source())}});
    } else {
      error(v, what + " '" + name + "' must be a string, number or boolean, not " + type_name(v));
    }
  }
  return env;
}

}  // namespace hearth::workflows
