// Private to workflows/: the walk over a parsed workflow file that checks it
// and builds the Workflow, collecting every error with its place. One class,
// defined in four files by the part of the file it reads:
//   loader.cpp         the document, and the getters every table uses
//   loader_tables.cpp  [on], [inputs], [env], [sandbox], [commands.*], [tools.*]
//   loader_steps.cpp   [[steps]]: run, skill and prompt steps, retry, if, timeout
//   loader_checks.cpp  what needs the whole file: the graph of needs, expressions
// ([proxies.*] is loader_proxies.cpp's, the shell rewriting loader_run.cpp's.)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "workflows/expr.h"
#include "workflows/loader.h"
#include "workflows/loader_proxies.h"
#include "workflows/workflow.h"

namespace hearth::workflows {

/// "sha256:" and the hex digest of `text`.
std::string sha256_hex(std::string_view text);
Location location_of(const toml::source_region& r);
/// "a table", "an integer", ...: for "must be X, not Y" errors.
std::string type_name(const toml::node& n);
nlohmann::json to_json(const toml::node& n);

/// The agent's built-in tools (a [tools.*] table may not take their names).
inline const std::vector<std::string> kAgentTools = {"read", "write", "edit", "glob", "grep", "bash"};

class Loader {
 public:
  Loader(std::string_view text, std::string path) : text_(text), path_(std::move(path)) {}
  LoadResult load();

 private:
  // loader.cpp: errors, and the getters every table uses.
  std::string at(Location l, const std::string& msg) const {
    return path_ + ":" + std::to_string(l.line) + ":" + std::to_string(l.column) + ": " + msg;
  }
  void error(Location l, std::string msg) { errors_.emplace_back(l, std::move(msg)); }
  void error(const toml::node& n, std::string msg) { error(location_of(n.source()), std::move(msg)); }
  std::string default_name() const;
  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where);
  /// `t[key]` when it has `type`; else an error (unless absent) and null.
  const toml::node* expect(const toml::table& t, const char* key, toml::node_type type, const char* what,
                           const std::string& where);
  std::optional<std::string> get_string(const toml::table& t, const char* key, const std::string& where);
  std::optional<TemplatedString> templated(const toml::node& n, const std::string& what);
  /// A string or an array of strings, as a list.
  std::vector<std::string> string_list(const toml::node& n, const std::string& what);
  void one_of(const toml::table& t, const char* key, const std::vector<std::string>& allowed, std::string& out);
  void read_top(const toml::table& doc);

  // loader_tables.cpp
  void read_sandbox(const toml::table& t);
  static bool is_event_name(const std::string& s);
  void read_on(const toml::table& on);
  void read_inputs(const toml::table& inputs);
  std::vector<EnvVar> read_env(const toml::table& t, const std::string& where, const std::string& what);
  void read_command(const std::string& name, const toml::node& n);
  // [tools.<name>]: a tool for skill and prompt steps that the program
  // embedding Hearth implements (hearth::Engine::register_tool).
  void read_tool(const std::string& name, const toml::node& n);

  // loader_steps.cpp
  void read_step(const toml::table& t);
  // A skill or prompt step: the agent's instructions, arguments, result
  // schema and limits (docs/skills.md).
  void read_agent(Step& step, const toml::table& t, const std::string& where);
  // result = "schema.json" (relative to the workflow file's folder) or an
  // inline table: a JSON Schema the result must match.
  void read_result_schema(AgentStep& a, const toml::node& n, const std::string& where);
  void read_retry(RetryPolicy& r, const toml::table& t, const std::string& where);
  void read_id(const Step& step, const toml::node& n);
  void read_run(Step& step, const toml::table& t, const std::string& where);
  static std::string line_number(std::string_view script, size_t offset);
  // A "line N, column M: ..." error of the shell rewriter, placed at that
  // spot of the file when the file holds it verbatim, else at the value.
  void run_error(const toml::node& n, const std::string& script, const std::string& what, const std::string& msg);
  void read_if(Step& step, const toml::node& n, const std::string& where);
  void read_timeout(Step& step, const toml::node& n, const std::string& where);

  // loader_checks.cpp
  // Unknown and cyclic needs.
  void check_graph();
  // Whether `step` needs `other`, directly or through other steps: a walk
  // over indices, done only for steps whose expressions read other steps.
  bool needs_transitively(const std::string& step, const std::string& other);
  void check_expression(const expr::Expression& e, Location loc, const std::string& what, const Step* step);
  static std::string join(const std::vector<std::string>& v);
  void check_template(const TemplatedString& t, const std::string& what, const Step* step);
  void check_expressions();

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

}  // namespace hearth::workflows
