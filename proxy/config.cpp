// The one file of proxy/ that walks toml++ nodes. Only non-throwing toml++
// calls are made on a parsed table; parse_proxy_config_text catches the
// parser's exception.
#include "proxy/config.h"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <tuple>

#include "http/token.h"

namespace hearth::proxy {

namespace {

const std::vector<std::string> kProxyKeys = {"upstream", "headers", "policy", "allow", "deny", "rate", "max-requests",
                                            "case-insensitive-paths", "allow-encoded-slash", "allow-path-params"};
const std::vector<std::string> kAllowKeys = {"method", "path", "body-max", "body", "rate"};
const std::vector<std::string> kDenyKeys = {"method", "path", "body"};
// Headers that describe the connection or the message framing: the proxy
// sets them itself, a template may not.
const std::vector<std::string> kReservedHeaders = {"host",    "content-length", "transfer-encoding", "connection",
                                                   "keep-alive", "upgrade",     "te",                "trailer",
                                                   "expect",  "proxy-authorization", "proxy-connection"};

SourcePos pos(const toml::source_region& r) {
  return {static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return http::is_tchar(static_cast<unsigned char>(c)); });
}

std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

class Reader {
 public:
  explicit Reader(std::vector<ConfigError>& errors) : errors_(errors) {}

  void error(const toml::node& n, std::string msg) { errors_.push_back({pos(n.source()), std::move(msg)}); }
  void error(SourcePos p, std::string msg) { errors_.push_back({p, std::move(msg)}); }

  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) {
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string hint;
      std::string dashed = key;
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      if (std::find(allowed.begin(), allowed.end(), dashed) != allowed.end()) hint = " (did you mean '" + dashed + "'?)";
      std::string list;
      for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error(pos(k.source()), "unknown key '" + key + "' in " + where + hint + "; known keys: " + list);
    }
  }

  const toml::node* get(const toml::table& t, const char* key, toml::node_type type, const char* what,
                        const std::string& where) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (n->type() != type) {
      error(*n, "'" + std::string(key) + "' in " + where + " must be " + what);
      return nullptr;
    }
    return n;
  }

  std::optional<std::string> string(const toml::table& t, const char* key, const std::string& where) {
    auto* n = get(t, key, toml::node_type::string, "a string", where);
    if (!n) return std::nullopt;
    return n->as_string()->get();
  }

  std::optional<ProxyDef> proxy(const std::string& name, const toml::node& node) {
    std::string where = "[proxies." + name + "]";
    auto* t = node.as_table();
    if (!t) {
      error(node, where + " must be a table");
      return std::nullopt;
    }
    ProxyDef def;
    def.name = name;
    def.at = pos(node.source());
    check_keys(*t, kProxyKeys, where);
    if (auto u = string(*t, "upstream", where)) {
      auto checked = check_upstream(*u);
      if (!checked) error(*t->get("upstream"), "'upstream' in " + where + ": " + checked.message());
      else def.upstream = *checked;
    } else if (!t->get("upstream")) {
      error(node, where + " needs an upstream URL (upstream = \"https://api.example.com\")");
    }
    if (auto* h = get(*t, "headers", toml::node_type::table, "a table of header names to values", where))
      read_headers(*h->as_table(), where, def);
    if (auto p = string(*t, "policy", where)) {
      if (std::find(kPresets.begin(), kPresets.end(), *p) == kPresets.end())
        error(*t->get("policy"), "'policy' in " + where + " must be \"read-only\" (GET and HEAD) or \"any\" (every method), not " + in_quotes(*p));
      else def.preset = *p;
    }
    if (auto* a = get(*t, "allow", toml::node_type::array, "an array of rules", where))
      read_rules(*a->as_array(), where, "allow", def.allow);
    if (auto* d = get(*t, "deny", toml::node_type::array, "an array of rules", where))
      read_rules(*d->as_array(), where, "deny", def.deny);
    if (auto r = string(*t, "rate", where)) {
      auto rate = parse_rate(*r);
      if (!rate) error(*t->get("rate"), "'rate' in " + where + ": " + rate.message());
      else def.rate = *rate;
    }
    if (auto* m = get(*t, "max-requests", toml::node_type::integer, "a whole number of requests", where)) {
      if (m->as_integer()->get() < 1) error(*m, "'max-requests' in " + where + " must be at least 1");
      else def.max_requests = static_cast<uint64_t>(m->as_integer()->get());
    }
    read_path_options(*t, where, def.paths);
    for (auto& r : preset_rules(def.preset)) def.allow.push_back(std::move(r));
    if (def.allow.empty() && !t->get("allow") && !t->get("policy"))
      error(node, where + " allows nothing: set policy = \"read-only\" (GET and HEAD) or \"any\", or list allow rules");
    return def;
  }

  void read_path_options(const toml::table& t, const std::string& where, PathOptions& o) {
    const std::pair<const char*, bool*> keys[] = {{"case-insensitive-paths", &o.case_insensitive},
                                                  {"allow-encoded-slash", &o.allow_encoded_slash},
                                                  {"allow-path-params", &o.allow_path_params}};
    for (auto& [key, value] : keys)
      if (auto* n = get(t, key, toml::node_type::boolean, "true or false", where)) *value = n->as_boolean()->get();
  }

  Result<std::string> check_upstream(const std::string& url) {
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url.data(), url.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST)))
      return Error{"not an absolute URL (like \"https://api.github.com\"): " + in_quotes(url)};
    std::string scheme = lower(url.substr(u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len));
    if (scheme != "https" && scheme != "http") return Error{"the scheme must be https (or http), not '" + scheme + "'"};
    if (u.field_set & ((1 << UF_QUERY) | (1 << UF_FRAGMENT)))
      return Error{"the URL has no query or fragment; requests append their own path and query"};
    if (u.field_set & (1 << UF_USERINFO))
      return Error{"the URL holds no credentials; put them in headers, from secrets"};
    std::string out = url;
    while (!out.empty() && out.back() == '/') out.pop_back();
    return out;
  }

  void read_headers(const toml::table& t, const std::string& where, ProxyDef& def) {
    std::set<std::string> seen;
    for (auto&& [k, v] : t) {
      std::string name(k.str());
      SourcePos at = pos(k.source());
      if (!is_token(name)) {
        error(at, "'" + name + "' in the headers of " + where + " is not a valid header name");
        continue;
      }
      if (std::find(kReservedHeaders.begin(), kReservedHeaders.end(), lower(name)) != kReservedHeaders.end()) {
        error(at, "the header '" + name + "' in " + where + " is set by the proxy itself and cannot be configured");
        continue;
      }
      if (!seen.insert(lower(name)).second) {
        error(at, "the header '" + name + "' appears twice in " + where + " (names are case-insensitive)");
        continue;
      }
      if (!v.is_string()) {
        error(v, "the header '" + name + "' in " + where + " must be a string");
        continue;
      }
      HeaderTemplate h{name, v.as_string()->get(), {}, pos(v.source())};
      if (auto s = scan_template(h); !s.ok()) error(v, "the header '" + name + "' in " + where + ": " + s.message());
      def.headers.push_back(std::move(h));
    }
  }

  // Finds the ${{ secrets.NAME }} in a header value; nothing else may be
  // interpolated there (the engine renders secrets only).
  static Status scan_template(HeaderTemplate& h) {
    const std::string& v = h.value;
    if (v.find_first_of("\r\n") != std::string::npos || v.find('\0') != std::string::npos)
      return Error{"a header value cannot hold a line break"};
    for (size_t at = v.find("${{"); at != std::string::npos; at = v.find("${{", at)) {
      size_t end = v.find("}}", at + 3);
      if (end == std::string::npos) return Error{"'${{' is not closed with '}}'"};
      std::string inner = v.substr(at + 3, end - at - 3);
      inner.erase(0, inner.find_first_not_of(" \t"));
      inner.erase(inner.find_last_not_of(" \t") + 1);
      std::string name = inner.rfind("secrets.", 0) == 0 ? inner.substr(8) : "";
      bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                   std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
      if (!valid)
        return Error{"only ${{ secrets.NAME }} can be interpolated into proxy headers, not '${{ " + inner + " }}'"};
      if (std::find(h.secrets.begin(), h.secrets.end(), name) == h.secrets.end()) h.secrets.push_back(name);
      at = end + 2;
    }
    return {};
  }

  void read_rules(const toml::array& a, const std::string& where, const std::string& kind, std::vector<Rule>& out) {
    for (size_t i = 0; i < a.size(); ++i) {
      const toml::node& n = *a.get(i);
      std::string label = kind + "[" + std::to_string(i) + "]";
      std::string rwhere = label + " of " + where;
      auto* t = n.as_table();
      if (!t) {
        error(n, rwhere + " must be a table like { method = \"GET\", path = \"/issues/**\" }");
        continue;
      }
      check_keys(*t, kind == "allow" ? kAllowKeys : kDenyKeys, rwhere);
      Rule r;
      r.label = label;
      r.at = pos(n.source());
      std::vector<std::string> parts;
      read_methods(*t, rwhere, r, parts);
      if (auto p = string(*t, "path", rwhere)) {
        if (auto why = glob_problem(*p); !why.empty()) error(*t->get("path"), "'path' in " + rwhere + ": " + why);
        r.path = *p;
        parts.push_back("path = " + in_quotes(*p));
      }
      if (const toml::node* m = t->get("body-max")) {
        std::optional<Result<uint64_t>> size;
        if (m->is_string()) size = parse_byte_size(m->as_string()->get());
        else if (m->is_integer() && m->as_integer()->get() >= 0) size = static_cast<uint64_t>(m->as_integer()->get());
        if (!size) error(*m, "'body-max' in " + rwhere + " must be a size like \"16KiB\" or a number of bytes");
        else if (!*size) error(*m, "'body-max' in " + rwhere + ": " + size->message());
        else r.body_max = **size;
        if (r.body_max) parts.push_back("body-max = " + (m->is_string() ? in_quotes(m->as_string()->get()) : std::to_string(*r.body_max)));
      }
      if (auto b = string(*t, "body", rwhere)) {
        auto compiled = BodyPattern::compile(*b);
        if (!compiled) error(*t->get("body"), "'body' in " + rwhere + ": " + compiled.message());
        else r.body = *compiled;
        parts.push_back("body = " + in_quotes(*b));
      }
      if (auto s = string(*t, "rate", rwhere)) {
        auto rate = parse_rate(*s);
        if (!rate) error(*t->get("rate"), "'rate' in " + rwhere + ": " + rate.message());
        else r.rate = *rate;
        parts.push_back("rate = " + in_quotes(*s));
      }
      if (parts.empty() && kind == "deny")
        error(n, rwhere + " is empty and would refuse everything; name a method, a path or a body pattern");
      std::string text;
      for (auto& p : parts) text += (text.empty() ? "" : ", ") + p;
      r.text = "{ " + text + " }";
      out.push_back(std::move(r));
    }
  }

  void read_methods(const toml::table& t, const std::string& where, Rule& r, std::vector<std::string>& parts) {
    const toml::node* m = t.get("method");
    if (!m) return;
    std::vector<const toml::node*> items;
    if (m->is_string()) items.push_back(m);
    else if (auto* arr = m->as_array())
      for (auto& e : *arr) items.push_back(&e);
    else return error(*m, "'method' in " + where + " must be a string or an array of strings");
    std::string written;
    for (auto* e : items) {
      if (!e->is_string()) return error(*e, "'method' in " + where + " must be a string or an array of strings");
      std::string v = e->as_string()->get();
      std::string up = v;
      for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (up == "*") {
        r.methods.clear();
        written = "*";
        break;
      }
      if (!is_token(up)) return error(*e, "'" + v + "' in " + where + " is not an HTTP method");
      r.methods.push_back(up);
      written += (written.empty() ? "" : ", ") + up;
    }
    parts.push_back("method = " + in_quotes(written));
  }

  void egress(const toml::table& doc, ProxyConfig& cfg) {
    auto* sb = doc.get("sandbox");
    if (!sb || !sb->is_table()) return;
    if (auto* net = sb->as_table()->get("network"); net && net->is_string()) cfg.network = net->as_string()->get();
    auto* e = sb->as_table()->get("egress");
    if (!e) return;
    auto* arr = e->as_array();
    if (!arr) return error(*e, "'egress' in [sandbox] must be an array of \"host:port\" strings");
    if (cfg.network != "proxies" && !arr->empty())
      error(*e, "'egress' in [sandbox] applies to network = \"proxies\" (network is " +
                    (cfg.network.empty() ? std::string("\"none\" by default") : in_quotes(cfg.network)) + ")");
    for (auto& item : *arr) {
      if (!item.is_string()) {
        error(item, "each entry of 'egress' in [sandbox] must be a \"host:port\" string");
        continue;
      }
      auto target = parse_egress(item.as_string()->get());
      if (!target) {
        error(item, "'egress' in [sandbox]: " + target.message());
        continue;
      }
      target->at = pos(item.source());
      cfg.egress.push_back(*target);
    }
  }

  static Result<EgressTarget> parse_egress(const std::string& s) {
    auto bad = [&](const std::string& why) {
      return Error{in_quotes(s) + " is not a host:port pair (like \"registry.npmjs.org:443\")" + why};
    };
    http_parser_url u;
    http_parser_url_init(&u);
    if (s.find_first_of("*/@") != std::string::npos) return bad("; wildcards, paths and user names are not supported");
    if (http_parser_parse_url(s.data(), s.size(), 1, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
        !(u.field_set & (1 << UF_PORT)))
      return bad("");
    if (u.port == 0) return bad(": the port must be 1-65535");
    EgressTarget t;
    t.host = lower(s.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len));
    t.port = u.port;
    return t;
  }

 private:
  std::vector<ConfigError>& errors_;
};

bool valid_proxy_name(const std::string& n) {
  return !n.empty() && std::isalpha(static_cast<unsigned char>(n[0])) &&
         std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

}  // namespace

std::vector<std::string> ProxyDef::secret_names() const {
  std::vector<std::string> out;
  for (auto& h : headers)
    for (auto& s : h.secrets)
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  return out;
}

std::string EgressTarget::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const ProxyDef* ProxyConfig::find(std::string_view name) const {
  for (auto& p : proxies)
    if (p.name == name) return &p;
  return nullptr;
}

std::string env_name(std::string_view proxy_name) {
  std::string out = "HEARTH_PROXY_";
  for (char c : proxy_name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

ConfigResult parse_proxy_config(const toml::table& doc) {
  ConfigResult result;
  Reader r(result.errors);
  if (const toml::node* p = doc.get("proxies")) {
    if (!p->is_table()) {
      r.error(*p, "[proxies] must be a table of proxies ([proxies.github] ...)");
    } else {
      std::map<std::string, std::string> by_env;
      for (auto&& [k, v] : *p->as_table()) {
        std::string name(k.str());
        if (!valid_proxy_name(name)) {
          r.error(pos(k.source()), "the proxy name '" + name + "' must start with a letter and hold only letters, digits, '-' and '_'");
          continue;
        }
        auto [it, fresh] = by_env.emplace(env_name(name), name);
        if (!fresh) {
          r.error(pos(k.source()), "the proxies '" + it->second + "' and '" + name + "' would both be " + it->first +
                                       " inside the sandbox; rename one");
          continue;
        }
        if (auto def = r.proxy(name, v)) result.config.proxies.push_back(std::move(*def));
      }
    }
  }
  r.egress(doc, result.config);
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
  });
  return result;
}

std::vector<std::string> parse_step_proxies(const toml::node& value, const ProxyConfig& config,
                                            const std::string& where, std::vector<ConfigError>& errors,
                                            const Suggest& suggest) {
  Reader r(errors);
  std::vector<std::string> names;
  auto* arr = value.as_array();
  if (!arr) {
    r.error(value, "'proxies' in " + where + " must be an array of proxy names");
    return names;
  }
  if (!arr->empty() && config.network != "proxies")
    r.error(value, where + " uses proxies, which need network = \"proxies\" in [sandbox]");
  for (auto& item : *arr) {
    if (!item.is_string()) {
      r.error(item, "'proxies' in " + where + " must be an array of proxy names");
      continue;
    }
    std::string name = item.as_string()->get();
    if (!config.find(name)) {
      std::string known;
      std::vector<std::string> names_defined;
      for (auto& p : config.proxies) {
        known += (known.empty() ? "" : ", ") + p.name;
        names_defined.push_back(p.name);
      }
      std::string hint = suggest ? suggest(name, names_defined) : "";
      r.error(item, where + " uses the proxy '" + name + "', which is not defined" +
                        (known.empty() ? std::string(" (there is no [proxies] table)")
                                       : hint.empty() ? " (defined: " + known + ")" : hint));
      continue;
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      r.error(item, where + " lists the proxy '" + name + "' twice");
      continue;
    }
    names.push_back(name);
  }
  return names;
}

Result<ProxyConfig> parse_proxy_config_text(std::string_view text, const std::string& path) {
  toml::table doc;
  try {
    doc = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Error{path + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                 ": " + std::string(e.description())};
  }
  auto r = parse_proxy_config(doc);
  if (r.ok()) return std::move(r.config);
  std::string msg;
  for (auto& e : r.errors)
    msg += (msg.empty() ? "" : "\n") + path + ":" + std::to_string(e.at.line) + ":" + std::to_string(e.at.column) + ": " +
           e.message;
  return Error{msg};
}

Result<std::vector<std::pair<std::string, std::string>>> render_headers(
    const ProxyDef& def, const std::function<std::optional<std::string>(const std::string&)>& secret) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& h : def.headers) {
    std::string value;
    const std::string& v = h.value;
    size_t from = 0;
    for (size_t at = v.find("${{"); at != std::string::npos; at = v.find("${{", from)) {
      size_t end = v.find("}}", at + 3);
      std::string inner = v.substr(at + 3, end - at - 3);
      inner.erase(0, inner.find_first_not_of(" \t"));
      inner.erase(inner.find_last_not_of(" \t") + 1);
      std::string name = inner.substr(8);  // "secrets." checked by the parser
      auto s = secret(name);
      std::string where = "the secret " + name + " (header '" + h.name + "' of proxy '" + def.name + "')";
      if (!s) return Error{where + " is not set"};
      if (s->find_first_of("\r\n") != std::string::npos || s->find('\0') != std::string::npos)
        return Error{where + " holds a line break or NUL and cannot go into a header"};
      value += v.substr(from, at - from) + *s;
      from = end + 2;
    }
    value += v.substr(from);
    out.emplace_back(h.name, std::move(value));
  }
  return out;
}

}  // namespace hearth::proxy
