// Private to workflows/: the walk over a parsed workflow file that checks it
// and builds the Workflow, collecting every error with its place. One class,
// defined in four files by the part of the file it reads:
//   loader.cpp         the document, and the getters every table uses
//   loader_tables.cpp  [on], [inputs], [env], [sandbox], [commands.*], [tools.*]
//   loader_steps.cpp   [[steps]]: run, skill and prompt steps, retry, if, timeout
//   loader_checks.cpp  what needs the whole file: the graph of needs, expressions
// ([proxies.*] is loader_proxies.cpp's, the shell rewriting loader_run.cpp's;
// the getters shared with it are TomlReader's, toml_reader.h.)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/expr.h"
#include "workflows/loader.h"
#include "workflows/loader_proxies.h"
#include "workflows/toml_reader.h"
#include "workflows/tomlpp.h"
#include "workflows/workflow.h"

namespace hearth::workflows {

/// "sha256:" and the hex digest of `text`.
std::string sha256_hex(std::string_view text);
nlohmann::json to_json(const toml::node& n);

/// The agent's built-in tools (a [tools.*] table may not take their names).
inline const std::vector<std::string> kAgentTools = {"read", "write", "edit", "glob", "grep", "bash"};

class Loader : private TomlReader {
 public:
  Loader(std::string_view text, std::string path) : text_(text), path_(std::move(path)) {}
  LoadResult load();

 private:
  // loader.cpp: the document and its top level; the getters are TomlReader's.
  std::string at(Location l, const std::string& msg) const { return placed(path_, l, msg); }
  std::string default_name() const;
  std::optional<TemplatedString> templated(const toml::node& n, const std::string& what);
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
  void check_template(const TemplatedString& t, const std::string& what, const Step* step);
  void check_expressions();

  std::string_view text_;
  std::string path_;
  Workflow wf_;
  std::vector<LoadError> warnings_;  // "warning: ...", printed by `hearth validate`
  ProxyReader proxies_{*this};
  std::map<std::string, Location> first_seen_;
  std::unordered_map<std::string, size_t> index_;  // step id -> position (filled by check_graph)
  bool graph_ok_ = false;
  std::vector<std::pair<std::string, TemplatedString>> step_templates_;  // step id -> its run template
};

}  // namespace hearth::workflows
