// The compiled form of a workflow gives back exactly what the loader gives,
// and a form that is damaged, cut short, of another version or written for
// other text is refused (never a crash, never another workflow).
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "workflows/compiled_form.h"
#include "workflows/loader.h"

using namespace hearth::workflows;
using nlohmann::json;

namespace {

// Every field of a Workflow, written out independently of the form's own
// walk: expressions and templates by their source and parts, JSON values
// with their exact number types.
json typed(const json& j) {
  switch (j.type()) {
    case json::value_t::array: {
      json out = json::array();
      for (auto& e : j) out.push_back(typed(e));
      return out;
    }
    case json::value_t::object: {
      json out = json::object();
      for (auto& [k, v] : j.items()) out[k] = typed(v);
      return out;
    }
    case json::value_t::number_float: {
      std::ostringstream os;
      os << std::hexfloat << j.get<double>();  // NaN and infinities too
      return {{"float", os.str()}};
    }
    default: return {{std::string(j.type_name()) + ":" + std::to_string(static_cast<int>(j.type())), j.dump()}};
  }
}
json loc(Location l) { return {l.line, l.column}; }
json pos(hearth::proxy::SourcePos p) { return {p.line, p.column}; }
json tpl(const expr::Template& t) {
  json out = json::array();
  for (auto& p : t.parts) out.push_back({p.literal, p.offset, p.expr ? json(p.expr->text()) : json()});
  return out;
}
json tstr(const TemplatedString& t) { return {t.source, tpl(t.parsed), loc(t.location)}; }
json envs(const std::vector<EnvVar>& v) {
  json out = json::array();
  for (auto& e : v) out.push_back({e.name, tstr(e.value)});
  return out;
}
template <class T, class F>
json opt(const std::optional<T>& v, F f) {
  return v ? f(*v) : json();
}
json rate(const hearth::proxy::Rate& r) { return {r.count, r.per.count(), r.text}; }
json rules(const std::vector<hearth::proxy::Rule>& v) {
  json out = json::array();
  for (auto& r : v)
    out.push_back({r.methods, r.path, opt(r.body_max, [](auto b) { return json(b); }),
                   opt(r.body, [](auto& b) { return json(b.text()); }), opt(r.rate, rate), r.label, r.text, pos(r.at)});
  return out;
}

json dump(const Workflow& wf) {
  json d;
  d["path"] = wf.path, d["text"] = wf.text, d["hash"] = wf.hash, d["name"] = wf.name;
  d["description"] = wf.description, d["on_github"] = wf.on_github, d["inputs"] = typed(wf.inputs);
  d["env"] = envs(wf.env);
  for (auto& [k, c] : wf.commands)
    d["commands"][k] = {c.name,   loc(c.location), c.exec,    c.secrets,      envs(c.env), c.allow,
                        c.deny,   c.presets,       c.timeout.count(), c.remote, c.host};
  for (auto& [k, t] : wf.tools) d["tools"][k] = {t.name, loc(t.location)};
  for (auto& p : wf.proxies) {
    json headers = json::array();
    for (auto& h : p.headers) headers.push_back({h.name, h.value, h.secrets, pos(h.at)});
    d["proxies"].push_back({p.name, p.upstream, headers, p.preset, rules(p.allow), rules(p.deny), opt(p.rate, rate),
                            opt(p.max_requests, [](auto m) { return json(m); }),
                            {p.paths.case_insensitive, p.paths.allow_encoded_slash, p.paths.allow_path_params}, pos(p.at)});
  }
  auto& s = wf.sandbox;
  json egress = json::array();
  for (auto& e : s.egress) egress.push_back({e.host, e.port, pos(e.at)});
  d["sandbox"] = {s.kind, s.workspace, s.ref, s.network, egress, opt(s.memory_bytes, [](auto m) { return json(m); }),
                  opt(s.pids, [](auto m) { return json(m); }), opt(s.cpus, [](auto c) { return typed(c); }),
                  loc(s.location)};
  d["model"] = {wf.model.name, wf.model.base_url, loc(wf.model.location)};
  for (auto& st : wf.steps) {
    json slots = json::array();
    for (auto& [k, e] : st.run_slots) slots.push_back({k, e.text()});
    auto& r = st.retry;
    json agent = opt(st.agent, [](const AgentStep& a) {
      return json{a.skill, opt(a.prompt, tstr), envs(a.with), opt(a.result_schema, typed), a.result_file,
                  a.result_retries, a.max_turns, a.max_tokens, a.model, a.tools};
    });
    d["steps"].push_back({st.id, loc(st.location), st.name, st.run, agent, slots, st.needs,
                          opt(st.if_expr, [](auto& e) { return json(e.text()); }), loc(st.if_location), envs(st.env),
                          opt(st.timeout, [](auto t) { return json(t.count()); }), opt(st.working_directory, tstr),
                          st.continue_on_error,
                          {r.attempts, r.exponential, r.delay.count(), r.max_delay.count(), r.jitter, r.on_failure,
                           r.on_timeout, r.on_interrupted},
                          st.commands, st.proxies, st.definition_hash});
  }
  return d;
}

// A workflow that sets every part the form keeps.
const std::string kEverything = R"toml(name = "everything"
description = "all the parts"
[on]
github = ["issues.opened", "push"]
[inputs]
issue = { type = "object", required = true }
count = { type = "integer", minimum = -3, maximum = 12 }
ratio = { type = "number", maximum = 0.25 }
far = { type = "number", maximum = inf }
[env]
GREETING = "hi ${{ inputs.issue.title }}"
PLAIN = "plain"
[commands.gh]
secrets = ["GH_TOKEN"]
env = { GH_REPO = "o/r" }
preset = "gh:read-only"
allow = ["label list"]
deny = ["label delete"]
timeout = "5s"
[tools.lookup]
host = true
[proxies.github]
upstream = "https://api.github.com"
headers = { Authorization = "Bearer ${{ secrets.GH_TOKEN }}" }
policy = "read-only"
max-requests = 50
rate = "60/min"
[proxies.tracker]
upstream = "https://tracker.example.com/api"
allow = [ { method = "POST", path = "/issues/*/comments", body-max = "16KiB", body = '^\{"body":', rate = "10/hour" } ]
deny = [ { path = "/admin/**" } ]
[sandbox]
network = "proxies"
egress = ["registry.npmjs.org:443", "[2001:db8::1]:8443"]
memory = "512M"
pids = 64
cpus = 1.5
[model]
name = "openai/gpt-x"
base-url = "http://127.0.0.1:9/v1"

[[steps]]
id = "first"
name = "The first"
run = "echo ${{ inputs.issue.title }} && gh label list"
env = { A = "${{ inputs.count }}", B = "b" }
timeout = "90s"
working-directory = "sub/${{ inputs.issue.number }}"
continue-on-error = true
retry = { attempts = 3, backoff = "fixed", delay = "2s", max-delay = "1m", jitter = false, on = ["failure", "interrupted"] }
commands = ["gh"]
proxies = ["github", "tracker"]

[[steps]]
id = "ask"
needs = ["first"]
if = "steps.first.status == 'succeeded' && inputs.count > 2"
prompt = "Summarise ${{ steps.first.outputs.x }} for ${{ inputs.issue.title }}"
with = { who = "${{ inputs.issue.user }}", n = "3" }
result = { type = "object", properties = { ok = { type = "boolean" }, score = { type = "number", minimum = -1.5 } } }
result-retries = 4
max-turns = 9
max-tokens = 12000
model = "anthropic/claude-x"
tools = ["read", "lookup"]

[[steps]]
id = "last"
needs = ["ask"]
if = "always()"
run = '''
echo "${{ steps.ask.result.ok }}"
printf '%s\n' "${{ toJSON(inputs) }}"
'''
)toml";

LoadResult parsed(const std::string& text, const std::string& path) {
  auto r = load_workflow_text(text, path);
  std::string all;
  for (auto& e : r.errors) all += e + "\n";
  BOOST_REQUIRE_MESSAGE(r.ok(), path + " does not load:\n" + all);
  return r;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The workflows of the repository: examples/ and .hearth/workflows/.
std::vector<std::filesystem::path> repo_workflows() {
  const char* root = std::getenv("HEARTH_SOURCE_ROOT");
  BOOST_REQUIRE_MESSAGE(root, "HEARTH_SOURCE_ROOT is not set");
  std::vector<std::filesystem::path> out;
  for (auto dir : {"examples", ".hearth"})
    for (auto& e : std::filesystem::recursive_directory_iterator(std::filesystem::path(root) / dir))
      if (e.path().extension() == ".toml" && e.path().string().find("/cassette") == std::string::npos)
        out.push_back(e.path());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(compiled_form)

BOOST_AUTO_TEST_CASE(a_compiled_workflow_reads_back_as_the_loader_gives_it) {
  auto r = parsed(kEverything, "/repo/.hearth/workflows/everything.toml");
  auto form = encode_compiled(*r.workflow);
  BOOST_REQUIRE(form.has_value());
  BOOST_TEST(form->find('\0') == std::string::npos);
  auto back = decode_compiled(*form, kEverything, r.workflow->path);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(dump(*back).dump(1) == dump(*r.workflow).dump(1));
  // The expressions read back evaluate as the loaded ones do.
  json ctx = {{"steps", {{"first", {{"status", "succeeded"}}}}}, {"inputs", {{"count", 3}}}};
  BOOST_TEST(back->steps[1].if_expr->evaluate(ctx).value() == r.workflow->steps[1].if_expr->evaluate(ctx).value());
}

BOOST_AUTO_TEST_CASE(the_repositorys_workflows_read_back_as_the_loader_gives_them) {
  int compiled = 0;
  for (auto& path : repo_workflows()) {
    BOOST_TEST_CONTEXT(path) {
      auto text = read_file(path);
      auto r = parsed(text, path.string());
      auto form = encode_compiled(*r.workflow);
      bool reads_a_file = false;
      for (auto& s : r.workflow->steps) reads_a_file = reads_a_file || (s.agent && !s.agent->result_file.empty());
      // A result schema read from a file is read again at each load: no form.
      BOOST_TEST(form.has_value() == !reads_a_file);
      if (!form) continue;
      auto back = decode_compiled(*form, text, path.string());
      BOOST_REQUIRE(back.has_value());
      BOOST_TEST(dump(*back).dump(1) == dump(*r.workflow).dump(1));
      ++compiled;
    }
  }
  BOOST_TEST(compiled >= 3);
}

BOOST_AUTO_TEST_CASE(a_form_cut_short_anywhere_is_refused) {
  auto r = parsed(kEverything, "wf.toml");
  auto form = encode_compiled(*r.workflow).value();
  for (size_t n = 0; n < form.size(); ++n)
    BOOST_TEST_REQUIRE(!decode_compiled(std::string_view(form).substr(0, n), kEverything, "wf.toml").has_value(),
                       "the form cut at byte " << n << " of " << form.size() << " was read");
  BOOST_TEST(!decode_compiled(form + "x", kEverything, "wf.toml").has_value());
}

BOOST_AUTO_TEST_CASE(a_form_of_another_version_text_or_path_is_refused) {
  auto r = parsed(kEverything, "wf.toml");
  auto form = encode_compiled(*r.workflow).value();
  BOOST_REQUIRE(decode_compiled(form, kEverything, "wf.toml").has_value());
  std::string header = "hearth-workflow " + std::to_string(kCompiledFormVersion) + "\n";
  std::string older = "hearth-workflow " + std::to_string(kCompiledFormVersion - 1) + "\n";
  BOOST_TEST(!decode_compiled(older + form.substr(header.size()), kEverything, "wf.toml").has_value());
  std::string other_text = kEverything + "\n# edited\n";
  BOOST_TEST(!decode_compiled(form, other_text, "wf.toml").has_value());
  BOOST_TEST(!decode_compiled(form, kEverything, "other.toml").has_value());
  BOOST_TEST(!decode_compiled("", kEverything, "wf.toml").has_value());
}

BOOST_AUTO_TEST_CASE(damaged_bytes_are_refused_or_read_never_crash) {
  auto r = parsed(kEverything, "wf.toml");
  auto form = encode_compiled(*r.workflow).value();
  int refused = 0;
  for (size_t i = 0; i < form.size(); ++i) {
    for (char c : {'9', ':', ';', '\0', '\xff'}) {
      std::string bad = form;
      if (bad[i] == c) continue;
      bad[i] = c;
      if (!decode_compiled(bad, kEverything, "wf.toml")) ++refused;
    }
  }
  BOOST_TEST(refused > 0);
  // A count far beyond what the form holds is refused, not allocated.
  const std::string events = "2;13:issues.opened";  // the count of [on] github, its first
  auto at = form.find(events);
  BOOST_REQUIRE(at != std::string::npos);
  std::string huge = form.substr(0, at) + "99999999999999;" + form.substr(at + 2);
  BOOST_TEST(!decode_compiled(huge, kEverything, "wf.toml").has_value());
}

BOOST_AUTO_TEST_CASE(a_workflow_with_a_nul_character_is_not_compiled) {
  std::string text = "[[steps]]\nid = \"a\"\nrun = \"printf 'a\\u0000b'\"\n";
  auto r = parsed(text, "wf.toml");
  BOOST_TEST(r.workflow->steps[0].run.find('\0') != std::string::npos);
  BOOST_TEST(!encode_compiled(*r.workflow).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
