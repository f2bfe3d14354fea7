// [[steps]]: run steps, skill and prompt steps, and what every step may set
// (retry, if, timeout) (the Loader class: loader_impl.h).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "workflows/duration.h"
#include "workflows/loader_impl.h"
#include "workflows/loader_run.h"
#include "workflows/shell_template.h"
#include "workflows/suggest.h"

namespace hearth::workflows {

namespace {

const std::vector<std::string> kStepKeys = {"id",      "name",  "run",    "needs",
                                            "if",      "env",   "timeout", "working-directory",
                                            "continue-on-error", "retry", "commands", "proxies",
                                            "skill", "prompt", "with", "result", "result-retries", "max-turns",
                                            "max-tokens", "model", "tools"};
const std::vector<std::string> kRetryKeys = {"attempts", "backoff", "delay", "max-delay", "jitter", "on"};
const std::vector<std::string> kRetryOn = {"failure", "timeout", "interrupted"};

}  // namespace

void Loader::read_step(const toml::table& t) {
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

void Loader::read_agent(Step& step, const toml::table& t, const std::string& where) {
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

void Loader::read_result_schema(AgentStep& a, const toml::node& n, const std::string& where) {
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

void Loader::read_retry(RetryPolicy& r, const toml::table& t, const std::string& where) {
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

void Loader::read_id(const Step& step, const toml::node& n) {
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

void Loader::read_run(Step& step, const toml::table& t, const std::string& where) {
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
    warnings_.push_back({loc.value_or(location_of(n->source())),
                         "warning: 'run' of " + where + (loc ? "" : " (line " + line_number(src, line) + ")") +
                             " " + kUnsafeOutputWarning});
  }
  step.run = script->text;
  size_t slot = 0;
  for (const auto& p : parts)
    if (p.expr) step.run_slots.emplace_back(script->slots[slot++].variable, *p.expr);
  step_templates_.push_back({step.id, *tpl});
}

std::string Loader::line_number(std::string_view script, size_t offset) {
  return std::to_string(1 + std::count(script.begin(), script.begin() + offset, '\n'));
}

void Loader::run_error(const toml::node& n, const std::string& script, const std::string& what, const std::string& msg) {
  size_t line = 0, column = 0;
  int used = 0;
  if (std::sscanf(msg.c_str(), "line %zu, column %zu: %n", &line, &column, &used) == 2 && used > 0) {
    if (auto loc = value_location(text_, location_of(n.source()), script, script_offset(script, line, column)))
      return error(*loc, what + msg.substr(static_cast<size_t>(used)));
  }
  error(n, what + msg);
}

void Loader::read_if(Step& step, const toml::node& n, const std::string& where) {
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

void Loader::read_timeout(Step& step, const toml::node& n, const std::string& where) {
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

}  // namespace hearth::workflows
