// The syntax of API proxies (docs/proxies.md): the walk over the toml++
// nodes of `[proxies.*]`, `[sandbox] egress` and a step's `proxies`, with the
// loader's getters; each value is checked by proxy/definition.h or
// proxy/policy.h. Only non-throwing toml++ calls are made on a parsed table;
// parse_proxy_config_text catches the parser's exception.
#include "workflows/loader_proxies.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "workflows/suggest.h"

namespace hearth::workflows {

namespace {

using proxy::in_quotes;

const std::vector<std::string> kProxyKeys = {"upstream", "headers", "policy", "allow", "deny", "rate", "max-requests",
                                            "case-insensitive-paths", "allow-encoded-slash", "allow-path-params"};
const std::vector<std::string> kAllowKeys = {"method", "path", "body-max", "body", "rate"};
const std::vector<std::string> kDenyKeys = {"method", "path", "body"};

constexpr const char* kLocalRefused =
    " under kind = \"local\": its ports would be the host's own loopback, open to every local user; "
    "use kind = \"namespace\"";

proxy::SourcePos pos(const toml::node& n) {
  Location l = location_of(n.source());
  return {l.line, l.column};
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const proxy::ProxyDef* Workflow::proxy(std::string_view name) const {
  for (auto& p : proxies)
    if (p.name == name) return &p;
  return nullptr;
}

proxy::ProxyConfig ProxyReader::read_config(const toml::table& doc) {
  proxy::ProxyConfig cfg;
  if (const toml::node* p = doc.get("proxies")) read_proxies(*p, cfg);
  read_egress(doc, cfg);
  return cfg;
}

void ProxyReader::read_proxies(const toml::node& node, proxy::ProxyConfig& cfg) {
  auto* table = node.as_table();
  if (!table) return toml_.error(node, "[proxies] must be a table of proxies ([proxies.github] ...)");
  std::map<std::string, std::string> by_env;
  for (auto&& [k, v] : *table) {
    std::string name(k.str());
    Location at = location_of(k.source());
    if (!proxy::valid_proxy_name(name)) {
      toml_.error(at, "the proxy name '" + name + "' must start with a letter and hold only letters, digits, '-' and '_'");
      continue;
    }
    auto [it, fresh] = by_env.emplace(proxy::env_name(name), name);
    if (!fresh) {
      toml_.error(at, "the proxies '" + it->second + "' and '" + name + "' would both be " + it->first +
                          " inside the sandbox; rename one");
      continue;
    }
    if (auto def = read_proxy(name, v)) cfg.proxies.push_back(std::move(*def));
  }
}

std::optional<proxy::ProxyDef> ProxyReader::read_proxy(const std::string& name, const toml::node& node) {
  std::string where = "[proxies." + name + "]";
  auto* t = node.as_table();
  if (!t) {
    toml_.error(node, where + " must be a table");
    return std::nullopt;
  }
  proxy::ProxyDef def;
  def.name = name;
  def.at = pos(node);
  toml_.check_keys(*t, kProxyKeys, where, /*list_known=*/true);
  if (auto u = toml_.get_string(*t, "upstream", where)) {
    auto checked = proxy::check_upstream(*u);
    if (!checked) toml_.error(*t->get("upstream"), "'upstream' in " + where + ": " + checked.message());
    else def.upstream = *checked;
  } else if (!t->get("upstream")) {
    toml_.error(node, where + " needs an upstream URL (upstream = \"https://api.example.com\")");
  }
  if (auto* h = toml_.expect(*t, "headers", toml::node_type::table, "a table of header names to values", where))
    read_headers(*h->as_table(), where, def);
  if (auto p = toml_.get_string(*t, "policy", where)) {
    if (std::find(proxy::kPresets.begin(), proxy::kPresets.end(), *p) == proxy::kPresets.end())
      toml_.error(*t->get("policy"), "'policy' in " + where +
                                         " must be \"read-only\" (GET and HEAD) or \"any\" (every method), not " +
                                         in_quotes(*p));
    else def.preset = *p;
  }
  if (auto* a = toml_.expect(*t, "allow", toml::node_type::array, "an array of rules", where))
    read_rules(*a->as_array(), where, "allow", def.allow);
  if (auto* d = toml_.expect(*t, "deny", toml::node_type::array, "an array of rules", where))
    read_rules(*d->as_array(), where, "deny", def.deny);
  if (auto r = toml_.get_string(*t, "rate", where)) {
    auto rate = proxy::parse_rate(*r);
    if (!rate) toml_.error(*t->get("rate"), "'rate' in " + where + ": " + rate.message());
    else def.rate = *rate;
  }
  if (auto* m = toml_.expect(*t, "max-requests", toml::node_type::integer, "a whole number of requests", where)) {
    if (m->as_integer()->get() < 1) toml_.error(*m, "'max-requests' in " + where + " must be at least 1");
    else def.max_requests = static_cast<uint64_t>(m->as_integer()->get());
  }
  read_path_options(*t, where, def.paths);
  for (auto& r : proxy::preset_rules(def.preset)) def.allow.push_back(std::move(r));
  if (def.allow.empty() && !t->get("allow") && !t->get("policy"))
    toml_.error(node, where + " allows nothing: set policy = \"read-only\" (GET and HEAD) or \"any\", or list allow rules");
  return def;
}

void ProxyReader::read_path_options(const toml::table& t, const std::string& where, proxy::PathOptions& o) {
  const std::pair<const char*, bool*> keys[] = {{"case-insensitive-paths", &o.case_insensitive},
                                                {"allow-encoded-slash", &o.allow_encoded_slash},
                                                {"allow-path-params", &o.allow_path_params}};
  for (auto& [key, value] : keys)
    if (auto* n = toml_.expect(t, key, toml::node_type::boolean, "true or false", where)) *value = n->as_boolean()->get();
}

void ProxyReader::read_headers(const toml::table& t, const std::string& where, proxy::ProxyDef& def) {
  std::set<std::string> seen;
  for (auto&& [k, v] : t) {
    std::string name(k.str());
    Location at = location_of(k.source());
    if (!proxy::is_token(name)) {
      toml_.error(at, "'" + name + "' in the headers of " + where + " is not a valid header name");
      continue;
    }
    if (proxy::reserved_header(name)) {
      toml_.error(at, "the header '" + name + "' in " + where + " is set by the proxy itself and cannot be configured");
      continue;
    }
    if (!seen.insert(lower(name)).second) {
      toml_.error(at, "the header '" + name + "' appears twice in " + where + " (names are case-insensitive)");
      continue;
    }
    if (!v.is_string()) {
      toml_.error(v, "the header '" + name + "' in " + where + " must be a string");
      continue;
    }
    proxy::HeaderTemplate h{name, v.as_string()->get(), {}, pos(v)};
    if (auto s = proxy::scan_header_template(h); !s.ok())
      toml_.error(v, "the header '" + name + "' in " + where + ": " + s.message());
    def.headers.push_back(std::move(h));
  }
}

void ProxyReader::read_rules(const toml::array& a, const std::string& where, const std::string& kind,
                             std::vector<proxy::Rule>& out) {
  for (size_t i = 0; i < a.size(); ++i) {
    const toml::node& n = *a.get(i);
    std::string label = kind + "[" + std::to_string(i) + "]";
    std::string rwhere = label + " of " + where;
    auto* t = n.as_table();
    if (!t) {
      toml_.error(n, rwhere + " must be a table like { method = \"GET\", path = \"/issues/**\" }");
      continue;
    }
    proxy::Rule r = read_rule(*t, rwhere, kind);
    r.label = label;
    r.at = pos(n);
    out.push_back(std::move(r));
  }
}

proxy::Rule ProxyReader::read_rule(const toml::table& t, const std::string& where, const std::string& kind) {
  toml_.check_keys(t, kind == "allow" ? kAllowKeys : kDenyKeys, where, /*list_known=*/true);
  proxy::Rule r;
  std::vector<std::string> parts;  // the rule as written, for messages
  read_methods(t, where, r, parts);
  if (auto p = toml_.get_string(t, "path", where)) {
    if (auto why = proxy::glob_problem(*p); !why.empty()) toml_.error(*t.get("path"), "'path' in " + where + ": " + why);
    r.path = *p;
    parts.push_back("path = " + in_quotes(*p));
  }
  if (const toml::node* m = t.get("body-max")) {
    std::optional<Result<uint64_t>> size;
    if (m->is_string()) size = proxy::parse_byte_size(m->as_string()->get());
    else if (m->is_integer() && m->as_integer()->get() >= 0) size = static_cast<uint64_t>(m->as_integer()->get());
    if (!size) toml_.error(*m, "'body-max' in " + where + " must be a size like \"16KiB\" or a number of bytes");
    else if (!*size) toml_.error(*m, "'body-max' in " + where + ": " + size->message());
    else r.body_max = **size;
    if (r.body_max)
      parts.push_back("body-max = " + (m->is_string() ? in_quotes(m->as_string()->get()) : std::to_string(*r.body_max)));
  }
  if (auto b = toml_.get_string(t, "body", where)) {
    auto compiled = proxy::BodyPattern::compile(*b);
    if (!compiled) toml_.error(*t.get("body"), "'body' in " + where + ": " + compiled.message());
    else r.body = *compiled;
    parts.push_back("body = " + in_quotes(*b));
  }
  if (auto s = toml_.get_string(t, "rate", where)) {
    auto rate = proxy::parse_rate(*s);
    if (!rate) toml_.error(*t.get("rate"), "'rate' in " + where + ": " + rate.message());
    else r.rate = *rate;
    parts.push_back("rate = " + in_quotes(*s));
  }
  if (parts.empty() && kind == "deny")
    toml_.error(t, where + " is empty and would refuse everything; name a method, a path or a body pattern");
  r.text = "{ " + join(parts) + " }";
  return r;
}

void ProxyReader::read_methods(const toml::table& t, const std::string& where, proxy::Rule& r,
                               std::vector<std::string>& parts) {
  const toml::node* m = t.get("method");
  if (!m) return;
  std::string wrong = "'method' in " + where + " must be a string or an array of strings";
  std::vector<const toml::node*> items;
  if (m->is_string()) items.push_back(m);
  else if (auto* arr = m->as_array())
    for (auto& e : *arr) items.push_back(&e);
  else return toml_.error(*m, wrong);
  std::string written;
  for (auto* e : items) {
    if (!e->is_string()) return toml_.error(*e, wrong);
    std::string v = e->as_string()->get();
    std::string up = v;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (up == "*") {
      r.methods.clear();
      written = "*";
      break;
    }
    if (!proxy::is_token(up)) return toml_.error(*e, "'" + v + "' in " + where + " is not an HTTP method");
    r.methods.push_back(up);
    written += (written.empty() ? "" : ", ") + up;
  }
  parts.push_back("method = " + in_quotes(written));
}

void ProxyReader::read_egress(const toml::table& doc, proxy::ProxyConfig& cfg) {
  auto* sb = doc.get("sandbox");
  if (!sb || !sb->is_table()) return;
  if (auto* net = sb->as_table()->get("network"); net && net->is_string()) cfg.network = net->as_string()->get();
  auto* e = sb->as_table()->get("egress");
  if (!e) return;
  auto* arr = e->as_array();
  if (!arr) return toml_.error(*e, "'egress' in [sandbox] must be an array of \"host:port\" strings");
  if (cfg.network != "proxies" && !arr->empty())
    toml_.error(*e, "'egress' in [sandbox] applies to network = \"proxies\" (network is " +
                        (cfg.network.empty() ? std::string("\"none\" by default") : in_quotes(cfg.network)) + ")");
  for (auto& item : *arr) {
    if (!item.is_string()) {
      toml_.error(item, "each entry of 'egress' in [sandbox] must be a \"host:port\" string");
      continue;
    }
    auto target = proxy::parse_egress(item.as_string()->get());
    if (!target) {
      toml_.error(item, "'egress' in [sandbox]: " + target.message());
      continue;
    }
    target->at = pos(item);
    cfg.egress.push_back(*target);
  }
}

std::vector<std::string> ProxyReader::read_step_proxies(const toml::node& value, const proxy::ProxyConfig& config,
                                                        const std::string& where, const SuggestProxy& suggest) {
  std::vector<std::string> names;
  auto* arr = value.as_array();
  if (!arr) {
    toml_.error(value, "'proxies' in " + where + " must be an array of proxy names");
    return names;
  }
  if (!arr->empty() && config.network != "proxies")
    toml_.error(value, where + " uses proxies, which need network = \"proxies\" in [sandbox]");
  std::vector<std::string> defined;
  for (auto& p : config.proxies) defined.push_back(p.name);
  for (auto& item : *arr) {
    if (!item.is_string()) {
      toml_.error(item, "'proxies' in " + where + " must be an array of proxy names");
      continue;
    }
    std::string name = item.as_string()->get();
    if (!config.find(name)) {
      std::string hint = suggest ? suggest(name, defined) : "";
      toml_.error(item, where + " uses the proxy '" + name + "', which is not defined" +
                            (defined.empty() ? std::string(" (there is no [proxies] table)")
                                             : hint.empty() ? " (defined: " + join(defined) + ")" : hint));
      continue;
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      toml_.error(item, where + " lists the proxy '" + name + "' twice");
      continue;
    }
    names.push_back(name);
  }
  return names;
}

void ProxyReader::read(const toml::table& doc, Workflow& wf) {
  config_ = read_config(doc);
  wf.proxies = config_.proxies;
  wf.sandbox.egress = config_.egress;
  // Egress and a step's proxies need network = "proxies" (the reader says
  // so where they are written), so refusing that under kind = "local"
  // refuses them all.
  if (wf.sandbox.kind != "local" || wf.sandbox.network != "proxies") return;
  if (const toml::node* net = doc.at_path("sandbox.network").node())
    toml_.error(*net, "network = \"proxies\" in [sandbox] is not available" + std::string(kLocalRefused));
}

void ProxyReader::read_step(const toml::node& value, Step& step, const std::string& where) {
  step.proxies = read_step_proxies(value, config_, where, [](const std::string& name, const std::vector<std::string>& defined) {
    return did_you_mean(name, defined);
  });
}

ProxyConfigResult parse_proxy_config(const toml::table& doc) {
  TomlReader toml;
  ProxyConfigResult result;
  result.config = ProxyReader(toml).read_config(doc);
  result.errors = toml.sorted_errors();
  return result;
}

std::vector<std::string> parse_step_proxies(const toml::node& value, const proxy::ProxyConfig& config,
                                            const std::string& where, std::vector<LoadError>& errors,
                                            const SuggestProxy& suggest) {
  TomlReader toml;
  auto names = ProxyReader(toml).read_step_proxies(value, config, where, suggest);
  for (auto& e : toml.sorted_errors()) errors.push_back(std::move(e));
  return names;
}

Result<proxy::ProxyConfig> parse_proxy_config_text(std::string_view text, const std::string& path) {
  toml::table doc;
  try {
    doc = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Error{placed(path, location_of(e.source()), e.description())};
  }
  auto r = parse_proxy_config(doc);
  if (r.ok()) return std::move(r.config);
  std::string msg;
  for (auto& e : r.errors) msg += (msg.empty() ? "" : "\n") + placed(path, e.at, e.message);
  return Error{msg};
}

}  // namespace hearth::workflows
