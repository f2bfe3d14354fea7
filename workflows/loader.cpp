// The document and its top level; the other tables are read in
// loader_tables.cpp, loader_steps.cpp and loader_proxies.cpp, the whole-file
// checks made in loader_checks.cpp (the Loader class: loader_impl.h), with
// the getters of toml_reader.h. These files are the ones of workflows/ that
// walk toml++ nodes (toml_document.cpp is the other user of toml++); every
// toml++ exception is caught here or in loader_proxies.cpp's
// parse_proxy_config_text.
#include "workflows/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/sha256.h"
#include "workflows/loader_impl.h"
#include "workflows/suggest.h"

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

}  // namespace

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx;
  hearth_sha256_init(&ctx);
  hearth_sha256_update(&ctx, text.data(), text.size());
  hearth_sha256_final(digest, &ctx);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char byte : digest) {
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
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

LoadResult Loader::load() {
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
  for (auto& [loc, msg] : sorted_errors()) result.errors.push_back(at(loc, msg));
  for (auto& [loc, msg] : warnings_) result.warnings.push_back(at(loc, msg));
  if (result.errors.empty()) result.workflow = std::move(wf_);
  return result;
}

std::string Loader::default_name() const {
  std::string base = path_.substr(path_.find_last_of('/') + 1);
  auto dot = base.rfind('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

std::optional<TemplatedString> Loader::templated(const toml::node& n, const std::string& what) {
  auto parsed = expr::Template::parse(n.as_string()->get());
  if (!parsed) {
    error(n, "bad expression in " + what + ": " + parsed.message());
    return std::nullopt;
  }
  return TemplatedString{n.as_string()->get(), std::move(*parsed), location_of(n.source())};
}

void Loader::read_top(const toml::table& doc) {
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

void Loader::one_of(const toml::table& t, const char* key, const std::vector<std::string>& allowed, std::string& out) {
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
