// The one file of workflows/ that walks toml++ nodes (toml_document.cpp is the
// other user of toml++). Every toml++ exception is caught here.
#include "workflows/loader.h"
#include "sandbox/sizes.h"
#include "commands/git_push.h"
#include "commands/policy.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <sstream>

#include <toml++/toml.h>

#include "workflows/duration.h"
#include "workflows/loader_proxies.h"
#include "workflows/loader_run.h"
#include "workflows/shell_template.h"
#include "workflows/suggest.h"
#include "workflows/toml_document.h"

namespace hearth::workflows {

std::chrono::milliseconds RetryPolicy::backoff(int failed) const {
  if (!exponential || failed <= 1) return std::min(delay, max_delay);
  auto d = delay;
  for (int i = 1; i < failed && d < max_delay; ++i) d *= 2;
  return std::min(d, max_delay);
}

int Workflow::step_index(std::string_view id) const {
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].id == id) return static_cast<int>(i);
  return -1;
}

namespace {

const std::vector<std::string> kTopKeys = {"name", "description", "on", "inputs", "env", "commands", "sandbox", "proxies", "model", "tools", "steps"};
const std::vector<std::string> kModelKeys = {"name", "base-url"};
const std::vector<std::string> kAgentTools = {"read", "write", "edit", "glob", "grep", "bash"};
const std::vector<std::string> kCommandKeys = {"exec", "secrets", "env", "allow", "deny", "preset", "timeout", "host", "remote"};
const std::vector<std::string> kToolKeys = {"host"};
const std::vector<std::string> kSandboxKeys = {"kind", "workspace", "ref", "network", "egress", "memory", "pids", "cpus"};
const std::vector<std::string> kStepKeys = {"id",      "name",  "run",    "needs",
                                            "if",      "env",   "timeout", "working-directory",
                                            "continue-on-error", "retry", "commands", "proxies",
                                            "skill", "prompt", "with", "result", "result-retries", "max-turns",
                                            "max-tokens", "model", "tools"};
const std::vector<std::string> kRetryKeys = {"attempts", "backoff", "delay", "max-delay", "jitter", "on"};
const std::vector<std::string> kRetryOn = {"failure", "timeout", "interrupted"};
const std::vector<std::string> kOnKeys = {"github"};
// Contexts an expression may read, by where it appears.
const std::vector<std::string> kStepContexts = {"inputs", "env", "steps", "run"};
// What `steps.<id>` holds for a later step (engine/run.cpp builds it).
const std::vector<std::string> kStepProperties = {"status", "outputs", "exit-code", "result"};
const std::vector<std::string> kWorkflowContexts = {"inputs", "run"};

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Location location_of(const toml::source_region& r) {
  return {static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

nlohmann::json to_json(const toml::node& n) {
  if (auto* t = n.as_table()) {
    auto obj = nlohmann::json::object();
    for (auto&& [k, v] : *t) obj[std::string(k.str())] = to_json(v);
    return obj;
  }
  if (auto* a = n.as_array()) {
    auto arr = nlohmann::json::array();
    for (auto& v : *a) arr.push_back(to_json(v));
    return arr;
  }
  if (auto* s = n.as_string()) return s->get();
  if (auto* i = n.as_integer()) return i->get();
  if (auto* f = n.as_floating_point()) return f->get();
  if (auto* b = n.as_boolean()) return b->get();
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return os.str();
}

// Walks the parsed document, collecting errors; builds the Workflow.
class Loader {
 public:
  Loader(std::string_view text, std::string path) : text_(text), path_(std::move(path)) {}

  LoadResult load() {
    LoadResult result;
    toml::table doc;
    try {
      doc = toml::parse(text_, path_);
    } catch (const toml::parse_error& e) {
      result.errors.push_back(at(location_of(e.source()), std::string(e.description())));
      return result;
    }
    wf_.path = path_;
    wf_.text = std::string(text_);
    wf_.hash = sha256_hex(text_);
    wf_.name = default_name();
    read_top(doc);
    check_graph();
    check_expressions();
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.line, a.first.column) < std::tie(b.first.line, b.first.column);
    });
    for (auto& [loc, msg] : errors_) result.errors.push_back(at(loc, msg));
    for (auto& [loc, msg] : warnings_) result.warnings.push_back(at(loc, msg));
    if (result.errors.empty()) result.workflow = std::move(wf_);
    return result;
  }

 private:
  std::string at(Location l, const std::string& msg) const {
    return path_ + ":" + std::to_string(l.line) + ":" + std::to_string(l.column) + ": " + msg;
  }
  void error(Location l, std::string msg) { errors_.emplace_back(l, std::move(msg)); }
  void error(const toml::node& n, std::string msg) { error(location_of(n.source()), std::move(msg)); }

  std::string default_name() const {
    std::string base = path_.substr(path_.find_last_of('/') + 1);
    auto dot = base.rfind('.');
    return dot == std::string::npos ? base : base.substr(0, dot);
  }

  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) {
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      error(location_of(k.source()), "unknown key '" + key + "' in " + where + did_you_mean(key, allowed));
    }
  }

  const toml::node* expect(const toml::table& t, const char* key, toml::node_type type, const char* what,
                           const std::string& where) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (n->type() != type) {
      error(*n, "'" + std::string(key) + "' in " + where + " must be " + what + ", not " + type_name(*n));
      return nullptr;
    }
    return n;
  }

  std::optional<std::string> get_string(const toml::table& t, const char* key, const std::string& where) {
    auto* n = expect(t, key, toml::node_type::string, "a string", where);
    if (!n) return std::nullopt;
    return n->as_string()->get();
  }

  std::optional<TemplatedString> templated(const toml::node& n, const std::string& what) {
    auto parsed = expr::Template::parse(n.as_string()->get());
    if (!parsed) {
      error(n, "bad expression in " + what + ": " + parsed.message());
      return std::nullopt;
    }
    return TemplatedString{n.as_string()->get(), std::move(*parsed), location_of(n.source())};
  }

  void read_top(const toml::table& doc) {
    check_keys(doc, kTopKeys, "the workflow");
    if (auto s = get_string(doc, "name", "the workflow")) wf_.name = *s;
    if (auto s = get_string(doc, "description", "the workflow")) wf_.description = *s;
    if (auto* on = expect(doc, "on", toml::node_type::table, "a table", "the workflow")) read_on(*on->as_table());
    if (auto* in = expect(doc, "inputs", toml::node_type::table, "a table", "the workflow"))
      read_inputs(*in->as_table());
    if (auto* env = expect(doc, "env", toml::node_type::table, "a table", "the workflow"))
      wf_.env = read_env(*env->as_table(), "[env]", "the workflow's env");
    if (auto* c = expect(doc, "commands", toml::node_type::table, "a table", "the workflow"))
      for (auto&& [k, v] : *c->as_table()) read_command(std::string(k.str()), v);
    if (auto* tl = expect(doc, "tools", toml::node_type::table, "a table", "the workflow"))
      for (auto&& [k, v] : *tl->as_table()) read_tool(std::string(k.str()), v);
    if (auto* sb = expect(doc, "sandbox", toml::node_type::table, "a table", "the workflow"))
      read_sandbox(*sb->as_table());
    if (auto* m = expect(doc, "model", toml::node_type::table, "a table", "the workflow")) {
      const auto& t = *m->as_table();
      check_keys(t, kModelKeys, "[model]");
      wf_.model.location = location_of(t.source());
      if (auto v = get_string(t, "name", "[model]")) wf_.model.name = *v;
      if (auto v = get_string(t, "base-url", "[model]")) wf_.model.base_url = *v;
    }
    proxies_.read(doc, wf_);
    auto* steps = doc.get("steps");
    if (!steps) {
      error(Location{1, 1}, "the workflow has no steps: add at least one [[steps]] table");
      return;
    }
    auto* arr = steps->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      error(*steps, "'steps' must be an array of tables ([[steps]]), not " + type_name(*steps));
      return;
    }
    if (arr->empty()) error(*steps, "the workflow has no steps: add at least one [[steps]] table");
    for (auto& s : *arr) read_step(*s.as_table());
  }

  void one_of(const toml::table& t, const char* key, const std::vector<std::string>& allowed, std::string& out) {
    auto v = get_string(t, key, "[sandbox]");
    if (!v) return;
    if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
      std::string list;
      for (auto& a : allowed) list += (list.empty() ? "'" : ", '") + a + "'";
      error(*t.get(key), "'" + std::string(key) + "' in [sandbox] must be one of " + list + ", not '" + *v + "'" +
                             did_you_mean(*v, allowed));
      return;
    }
    out = *v;
  }

  void read_sandbox(const toml::table& t) {
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

  static bool is_event_name(const std::string& s) {
    auto word = [](std::string_view w) {
      return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    };
    auto dot = s.find('.');
    if (dot == std::string::npos) return word(s);
    return word(std::string_view(s).substr(0, dot)) && word(std::string_view(s).substr(dot + 1));
  }

  void read_on(const toml::table& on) {
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

  void read_command(const std::string& name, const toml::node& n) {
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

  // [tools.<name>]: a tool for skill and prompt steps that the program
  // embedding Hearth implements (hearth::Engine::register_tool).
  void read_tool(const std::string& name, const toml::node& n) {
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

  std::vector<std::string> string_list(const toml::node& n, const std::string& what) {
    std::vector<std::string> out;
    if (auto* s = n.as_string()) return {s->get()};
    auto* a = n.as_array();
    if (!a) {
      error(n, what + " must be a string or an array of strings, not " + type_name(n));
      return out;
    }
    for (auto& el : *a) {
      if (auto* s = el.as_string()) out.push_back(s->get());
      else error(el, what + " must hold only strings, found " + type_name(el));
    }
    return out;
  }

  void read_inputs(const toml::table& inputs) {
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

  std::vector<EnvVar> read_env(const toml::table& t, const std::string& where, const std::string& what) {
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

  void read_step(const toml::table& t) {
    Step step;
    step.location = location_of(t.source());
    auto id_node = t.get("id");
    std::string where = "step " + std::to_string(wf_.steps.size() + 1);
    if (!id_node) {
      error(step.location, where + " has no 'id'");
    } else if (auto id = get_string(t, "id", where)) {
      step.id = *id;
      read_id(step, *id_node);
      where = "step '" + step.id + "'";
    }
    check_keys(t, kStepKeys, where);
    step.name = get_string(t, "name", where).value_or(step.id);
    if (t.get("skill") || t.get("prompt")) read_agent(step, t, where);
    else read_run(step, t, where);
    if (auto* n = t.get("needs")) step.needs = string_list(*n, "'needs' of " + where);
    if (auto* n = t.get("commands")) {
      step.commands = string_list(*n, "'commands' of " + where);
      for (auto& c : step.commands)
        if (!wf_.commands.count(c)) {
          std::vector<std::string> known;
          for (auto& [k, v] : wf_.commands) known.push_back(k);
          error(*n, where + " is granted '" + c + "', which no [commands." + c + "] table declares" + did_you_mean(c, known));
        }
    }
    if (auto* n = t.get("proxies")) proxies_.read_step(*n, step, where);
    if (auto* n = expect(t, "if", toml::node_type::string, "a string", where)) read_if(step, *n, where);
    if (auto* n = expect(t, "env", toml::node_type::table, "a table", where))
      step.env = read_env(*n->as_table(), where, "env of " + where);
    if (auto* n = t.get("timeout")) read_timeout(step, *n, where);
    if (auto* n = expect(t, "working-directory", toml::node_type::string, "a string", where))
      step.working_directory = templated(*n, "'working-directory' of " + where);
    if (auto* n = expect(t, "continue-on-error", toml::node_type::boolean, "true or false", where))
      step.continue_on_error = n->as_boolean()->get();
    if (auto* n = expect(t, "retry", toml::node_type::table, "a table", where))
      read_retry(step.retry, *n->as_table(), "'retry' of " + where);
    step.definition_hash = sha256_hex(to_json(t).dump());
    wf_.steps.push_back(std::move(step));
  }

  // A skill or prompt step: the agent's instructions, arguments, result
  // schema and limits (docs/skills.md).
  void read_agent(Step& step, const toml::table& t, const std::string& where) {
    AgentStep a;
    if (t.get("run")) error(*t.get("run"), where + " has 'run' and '" + (t.get("skill") ? "skill" : "prompt") +
                                               "': a step runs a script or an agent, not both");
    if (t.get("skill") && t.get("prompt"))
      error(*t.get("prompt"), where + " has both 'skill' and 'prompt': give one");
    if (auto v = get_string(t, "skill", where)) {
      a.skill = *v;
      if (v->empty() || v->find('/') != std::string::npos || *v == "." || *v == "..")
        error(*t.get("skill"), "'skill' of " + where + " must be a skill's folder name, not '" + *v + "'");
    }
    if (auto* n = expect(t, "prompt", toml::node_type::string, "a string", where)) {
      a.prompt = templated(*n, "'prompt' of " + where);
      if (a.prompt && a.prompt->source.find_first_not_of(" \t\r\n") == std::string::npos)
        error(*n, "'prompt' of " + where + " is empty");
    }
    if (auto* n = expect(t, "with", toml::node_type::table, "a table", where))
      a.with = read_env(*n->as_table(), where, "'with' of " + where);
    if (auto* n = t.get("result")) read_result_schema(a, *n, where);
    auto count = [&](const char* key, int64_t lo, int64_t hi, auto& out) {
      auto* n = expect(t, key, toml::node_type::integer, "an integer", where);
      if (!n) return;
      int64_t v = n->as_integer()->get();
      if (v < lo || v > hi)
        error(*n, "'" + std::string(key) + "' of " + where + " must be between " + std::to_string(lo) + " and " +
                      std::to_string(hi));
      else out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    };
    count("result-retries", 0, 20, a.result_retries);
    count("max-turns", 1, 1000, a.max_turns);
    count("max-tokens", 1, int64_t{1} << 40, a.max_tokens);
    if (auto v = get_string(t, "model", where)) a.model = *v;
    if (auto* n = t.get("tools")) {
      a.tools = string_list(*n, "'tools' of " + where);
      std::vector<std::string> known = kAgentTools;
      for (auto& [k, v] : wf_.tools) known.push_back(k);
      for (auto& name : a.tools)
        if (std::find(known.begin(), known.end(), name) == known.end())
          error(*n, "unknown tool '" + name + "' in 'tools' of " + where + did_you_mean(name, known) +
                        "; the tools are " + join(known) + " (a tool of the embedding program needs a [tools." +
                        name + "] table with host = true)");
    }
    if (a.prompt) step_templates_.push_back({step.id, *a.prompt});
    step.agent = std::move(a);
  }

  // result = "schema.json" (relative to the workflow file's folder) or an
  // inline table: a JSON Schema the result must match.
  void read_result_schema(AgentStep& a, const toml::node& n, const std::string& where) {
    if (auto* tbl = n.as_table()) {
      a.result_schema = to_json(*tbl);
    } else if (auto* str = n.as_string()) {
      std::filesystem::path file = str->get();
      if (file.is_relative()) file = std::filesystem::path(path_).parent_path() / file;
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        error(n, "'result' of " + where + ": cannot read schema file " + file.string() + ": " + std::strerror(errno));
        return;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        error(n, "'result' of " + where + ": " + file.string() + " is not valid JSON");
        return;
      }
      a.result_schema = std::move(j);
      a.result_file = file.string();
    } else {
      error(n, "'result' of " + where + " must be a schema file's path or a table (an inline JSON Schema), not " +
                   type_name(n));
      return;
    }
    if (!a.result_schema->is_object())
      error(n, "'result' of " + where + " must be a JSON Schema: an object");
  }

  void read_retry(RetryPolicy& r, const toml::table& t, const std::string& where) {
    check_keys(t, kRetryKeys, where);
    if (auto* n = expect(t, "attempts", toml::node_type::integer, "an integer", where)) {
      int64_t v = n->as_integer()->get();
      if (v < 1 || v > 100) error(*n, "'attempts' in " + where + " must be between 1 and 100");
      else r.attempts = static_cast<int>(v);
    }
    if (auto b = get_string(t, "backoff", where)) {
      if (*b == "exponential" || *b == "fixed") r.exponential = *b == "exponential";
      else error(*t.get("backoff"), "'backoff' in " + where + " must be \"exponential\" or \"fixed\", not \"" + *b + "\"");
    }
    auto duration = [&](const char* key, std::chrono::milliseconds& out) {
      auto* n = t.get(key);
      if (!n) return;
      if (auto* i = n->as_integer()) {
        if (i->get() < 0) error(*n, "'" + std::string(key) + "' in " + where + " must not be negative");
        else out = std::chrono::seconds(i->get());
        return;
      }
      if (!n->is_string()) {
        error(*n, "'" + std::string(key) + "' in " + where + " must be a duration like \"5s\", not " + type_name(*n));
        return;
      }
      auto d = parse_duration(n->as_string()->get());
      if (!d) error(*n, "'" + std::string(key) + "' in " + where + ": " + d.message());
      else out = *d;
    };
    duration("delay", r.delay);
    duration("max-delay", r.max_delay);
    if (r.max_delay < r.delay) error(location_of(t.source()), "'max-delay' in " + where + " is shorter than 'delay'");
    if (auto* n = expect(t, "jitter", toml::node_type::boolean, "true or false", where)) r.jitter = n->as_boolean()->get();
    if (auto* n = t.get("on")) {
      r.on_failure = r.on_timeout = r.on_interrupted = false;
      for (auto& reason : string_list(*n, "'on' in " + where)) {
        if (reason == "failure") r.on_failure = true;
        else if (reason == "timeout") r.on_timeout = true;
        else if (reason == "interrupted") r.on_interrupted = true;
        else error(*n, "unknown reason '" + reason + "' in 'on' of " + where + did_you_mean(reason, kRetryOn) +
                           "; use failure, timeout or interrupted");
      }
    }
  }

  void read_id(const Step& step, const toml::node& n) {
    const std::string& id = step.id;
    bool valid = !id.empty() && (std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_');
    for (char c : id) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (!valid) {
      error(n, "step id '" + id + "' must start with a letter or '_' and hold only letters, digits, '_' and '-'");
      return;
    }
    if (auto it = first_seen_.find(id); it != first_seen_.end()) {
      error(n, "duplicate step id '" + id + "' (first defined on line " + std::to_string(it->second.line) + ")");
      return;
    }
    first_seen_[id] = location_of(n.source());
  }

  void read_run(Step& step, const toml::table& t, const std::string& where) {
    auto* n = t.get("run");
    if (!n) {
      error(step.location, where + " has no 'run' script");
      return;
    }
    if (!n->is_string()) {
      error(*n, "'run' of " + where + " must be a string, not " + type_name(*n));
      return;
    }
    auto tpl = templated(*n, "'run' of " + where);
    if (!tpl) return;
    const std::string& src = tpl->source;
    std::vector<std::pair<size_t, size_t>> spans;
    const auto& parts = tpl->parsed.parts;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].expr) continue;
      // The span ends where the next part's literal begins.
      size_t end = src.size();
      if (i + 1 < parts.size()) {
        const auto& next = parts[i + 1];
        end = (next.expr ? next.offset : src.size()) - next.literal.size();
      }
      spans.emplace_back(parts[i].offset, end);
    }
    auto script = rewrite_shell_interpolations(src, spans, integer_interpolations(tpl->parsed, wf_.inputs));
    if (!script) {
      run_error(*n, src, "in 'run' of " + where + ": ", script.message());
      return;
    }
    for (size_t line : unsafe_output_lines(src)) {
      auto loc = value_location(text_, location_of(n->source()), src, line);
      warnings_.emplace_back(loc.value_or(location_of(n->source())),
                             "warning: 'run' of " + where + (loc ? "" : " (line " + line_number(src, line) + ")") +
                                 " " + kUnsafeOutputWarning);
    }
    step.run = script->text;
    size_t slot = 0;
    for (const auto& p : parts)
      if (p.expr) step.run_slots.emplace_back(script->slots[slot++].variable, *p.expr);
    step_templates_.push_back({step.id, *tpl});
  }

  static std::string line_number(std::string_view script, size_t offset) {
    return std::to_string(1 + std::count(script.begin(), script.begin() + offset, '\n'));
  }

  // A "line N, column M: ..." error of the shell rewriter, placed at that
  // spot of the file when the file holds it verbatim, else at the value.
  void run_error(const toml::node& n, const std::string& script, const std::string& what, const std::string& msg) {
    size_t line = 0, column = 0;
    int used = 0;
    if (std::sscanf(msg.c_str(), "line %zu, column %zu: %n", &line, &column, &used) == 2 && used > 0) {
      if (auto loc = value_location(text_, location_of(n.source()), script, script_offset(script, line, column)))
        return error(*loc, what + msg.substr(static_cast<size_t>(used)));
    }
    error(n, what + msg);
  }

  void read_if(Step& step, const toml::node& n, const std::string& where) {
    const std::string& src = n.as_string()->get();
    step.if_location = location_of(n.source());
    auto tpl = expr::Template::parse(src);
    if (!tpl) {
      error(n, "bad expression in 'if' of " + where + ": " + tpl.message());
      return;
    }
    if (tpl->is_single_expression()) {
      for (auto& p : tpl->parts)
        if (p.expr) step.if_expr = *p.expr;
      return;
    }
    if (!tpl->is_literal()) {
      error(n, "'if' of " + where + " mixes ${{ }} with other text: write the whole condition as one expression");
      return;
    }
    auto e = expr::Expression::parse(src);
    if (!e) {
      error(n, "bad expression in 'if' of " + where + ": " + e.message());
      return;
    }
    step.if_expr = *e;
  }

  void read_timeout(Step& step, const toml::node& n, const std::string& where) {
    if (auto* i = n.as_integer()) {
      if (i->get() <= 0) error(n, "'timeout' of " + where + " must be positive");
      else step.timeout = std::chrono::seconds(i->get());
      return;
    }
    if (!n.is_string()) {
      error(n, "'timeout' of " + where + " must be a duration string like \"30s\" or a number of seconds, not " +
                   type_name(n));
      return;
    }
    auto d = parse_duration(n.as_string()->get());
    if (!d) error(n, "'timeout' of " + where + ": " + d.message());
    else step.timeout = *d;
  }

  // Unknown and cyclic needs.
  void check_graph() {
    std::vector<std::string> ids;
    for (size_t i = 0; i < wf_.steps.size(); ++i) {
      ids.push_back(wf_.steps[i].id);
      index_.emplace(wf_.steps[i].id, i);  // the first of duplicates (already reported)
    }
    for (auto& s : wf_.steps) {
      for (auto& n : s.needs) {
        if (n == s.id) error(s.location, "step '" + s.id + "' needs itself");
        else if (!index_.count(n))
          error(s.location, "step '" + s.id + "' needs unknown step '" + n + "'" + did_you_mean(n, ids));
      }
    }
    if (!errors_.empty()) return;
    // Depth-first search; a back edge is a cycle, reported with its path.
    std::vector<int> state(wf_.steps.size(), 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::string> stack;
    std::function<bool(int)> visit = [&](int i) {
      state[i] = 1;
      stack.push_back(wf_.steps[i].id);
      for (auto& n : wf_.steps[i].needs) {
        int j = static_cast<int>(index_.at(n));
        if (state[j] == 1) {
          auto from = std::find(stack.begin(), stack.end(), n);
          std::string path;
          for (auto it = from; it != stack.end(); ++it) path += *it + " -> ";
          error(wf_.steps[j].location, "cycle in 'needs': " + path + n);
          return true;
        }
        if (state[j] == 0 && visit(j)) return true;
      }
      stack.pop_back();
      state[i] = 2;
      return false;
    };
    for (size_t i = 0; i < wf_.steps.size(); ++i)
      if (state[i] == 0 && visit(static_cast<int>(i))) return;
    graph_ok_ = true;  // no unknown needs, no cycle
  }

  // Whether `step` needs `other`, directly or through other steps: a walk
  // over indices, done only for steps whose expressions read other steps.
  bool needs_transitively(const std::string& step, const std::string& other) {
    std::vector<char> seen(wf_.steps.size(), 0);
    std::vector<size_t> todo = {index_.at(step)};
    size_t target = index_.at(other);
    while (!todo.empty()) {
      size_t i = todo.back();
      todo.pop_back();
      for (auto& n : wf_.steps[i].needs) {
        size_t j = index_.at(n);
        if (j == target) return true;
        if (!seen[j]) {
          seen[j] = 1;
          todo.push_back(j);
        }
      }
    }
    return false;
  }

  void check_expression(const expr::Expression& e, Location loc, const std::string& what, const Step* step) {
    const auto& allowed = step ? kStepContexts : kWorkflowContexts;
    for (auto& c : e.context_refs()) {
      if (std::find(allowed.begin(), allowed.end(), c) == allowed.end())
        error(loc, "unknown context '" + c + "' in " + what + did_you_mean(c, allowed) + "; available here: " +
                       join(allowed));
    }
    if (!step) return;
    for (auto& r : e.step_refs()) {
      if (!index_.count(r)) {
        std::vector<std::string> ids;
        for (auto& s : wf_.steps) ids.push_back(s.id);
        error(loc, what + " reads unknown step '" + r + "'" + did_you_mean(r, ids));
      } else if (r != step->id && graph_ok_ && !needs_transitively(step->id, r)) {
        error(loc, what + " reads steps." + r + " but step '" + step->id + "' does not need '" + r +
                       "': add it to 'needs' so it has finished first");
      } else if (r == step->id) {
        error(loc, what + " reads its own step '" + r + "'");
      }
    }
    for (auto& [id, prop] : e.step_properties()) {
      if (index_.count(id) && std::find(kStepProperties.begin(), kStepProperties.end(), prop) == kStepProperties.end())
        error(loc, what + " reads steps." + id + "." + prop + ", which a step does not have" +
                       did_you_mean(prop, kStepProperties) + "; a step has " + join(kStepProperties));
    }
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  void check_template(const TemplatedString& t, const std::string& what, const Step* step) {
    for (auto& p : t.parsed.parts)
      if (p.expr) check_expression(*p.expr, t.location, what, step);
  }

  void check_expressions() {
    if (!errors_.empty() && !graph_ok_) return;  // graph unknown: step checks would mislead
    for (auto& v : wf_.env) check_template(v.value, "env '" + v.name + "'", nullptr);
    for (auto& s : wf_.steps) {
      std::string where = "step '" + s.id + "'";
      if (s.if_expr) check_expression(*s.if_expr, s.if_location, "'if' of " + where, &s);
      for (auto& v : s.env) check_template(v.value, "env '" + v.name + "' of " + where, &s);
      if (s.working_directory) check_template(*s.working_directory, "'working-directory' of " + where, &s);
      for (auto& [id, tpl] : step_templates_)
        if (id == s.id) check_template(tpl, (s.agent ? "'prompt' of " : "'run' of ") + where, &s);
      if (s.agent)
        for (auto& v : s.agent->with) check_template(v.value, "'with' " + v.name + " of " + where, &s);
    }
  }

  std::string_view text_;
  std::string path_;
  Workflow wf_;
  std::vector<std::pair<Location, std::string>> errors_;
  std::vector<std::pair<Location, std::string>> warnings_;  // "warning: ...", printed by `hearth validate`
  ProxyReader proxies_{errors_};
  std::map<std::string, Location> first_seen_;
  std::unordered_map<std::string, size_t> index_;  // step id -> position (filled by check_graph)
  bool graph_ok_ = false;
  std::vector<std::pair<std::string, TemplatedString>> step_templates_;  // step id -> its run template
};

}  // namespace

LoadResult load_workflow_text(std::string_view text, const std::string& path) {
  try {
    return Loader(text, path).load();
  } catch (const std::exception& e) {
    // A throw here is a bug of ours, not the user's: say so.
    LoadResult r;
    r.errors.push_back(path + ":1:1: internal error while loading (please report): " + e.what());
    return r;
  }
}

LoadResult load_workflow_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(path + ": cannot read workflow file: " + std::strerror(errno));
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_workflow_text(ss.str(), path);
}

}  // namespace hearth::workflows
