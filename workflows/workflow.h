// A loaded, validated workflow: what a run executes. Built only by
// workflows::load (loader.h), so every Workflow in the engine has passed
// validation.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/definition.h"
#include "workflows/expr.h"

namespace hearth::workflows {

/// 1-based line and column in the workflow file.
struct Location {
  int line = 0;
  int column = 0;
};

/// A string value that may hold `${{ }}` interpolations.
struct TemplatedString {
  std::string source;   // as written
  expr::Template parsed;
  Location location;
};

struct EnvVar {
  std::string name;
  TemplatedString value;
};

/// How a failed attempt is retried (`retry = { ... }`).
struct RetryPolicy {
  int attempts = 1;  // most attempts for failures and timeouts, the first included
  bool exponential = true;  // backoff "exponential" (delay, 2*delay, 4*delay...) or "fixed"
  std::chrono::milliseconds delay{1000};
  std::chrono::milliseconds max_delay{300000};
  bool jitter = true;  // wait a random time in [delay/2, delay]
  bool on_failure = true;      // a non-zero exit, a signal, a start or output-file error
  bool on_timeout = true;      // the step's timeout fired
  bool on_interrupted = true;  // the engine died while the attempt ran (see docs/durability.md)

  /// The wait before the attempt after `failed` failed attempts (1-based),
  /// before jitter.
  std::chrono::milliseconds backoff(int failed) const;
};

/// Interrupted attempts do not count against `attempts`, but a step
/// interrupted this many times in a row fails: it may be what kills the engine.
inline constexpr int kMaxInterruptions = 3;

/// What a skill or prompt step asks of the agent (docs/skills.md).
struct AgentStep {
  std::string skill;                      // skill = "name": .hearth/skills/<name> or .agents/skills/<name>
  std::optional<TemplatedString> prompt;  // prompt = "...": inline instructions instead of a skill
  std::vector<EnvVar> with;               // the skill's arguments, rendered into a JSON object
  std::optional<nlohmann::json> result_schema;  // JSON Schema (draft 7) of the result; none: the final text
  std::string result_file;                // result = "path": as resolved (empty when inline or none)
  int result_retries = 2;                 // rejected results the agent may correct
  int max_turns = 50;
  int64_t max_tokens = 0;                 // token budget of one attempt (input + output); 0: none
  std::string model;                      // overrides [model] name
  std::vector<std::string> tools;         // the agent's tools; empty: all of them
};

struct Step {
  std::string id;
  Location location;               // of the step's table
  std::string name;                // display name; defaults to id
  std::string run;                 // the script, interpolations rewritten (see shell_template.h)
  std::optional<AgentStep> agent;  // a skill or prompt step (then `run` is empty)
  std::vector<std::pair<std::string, expr::Expression>> run_slots;  // HEARTH_EXPR_n -> expression
  std::vector<std::string> needs;  // direct dependencies, as written
  std::optional<expr::Expression> if_expr;  // null: runs when success()
  Location if_location;
  std::vector<EnvVar> env;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<TemplatedString> working_directory;
  bool continue_on_error = false;
  RetryPolicy retry;
  /// "sha256:..." of the step's table as written: two workflows define a
  /// step the same way when these are equal.
  std::vector<std::string> commands;  // granted: names of [commands.<name>] tables
  std::vector<std::string> proxies;   // granted: names of [proxies.<name>] tables (docs/proxies.md)
  std::string definition_hash;
};

/// A command steps may be granted (`[commands.<name>]`, docs/commands.md).
/// Its patterns and presets were checked when the workflow loaded.
struct CommandDef {
  std::string name;                  // the table's key: what the sandbox calls
  Location location;                 // of the table
  std::string exec;                  // program on the host (PATH lookup or absolute); defaults to `name`
  std::vector<std::string> secrets;  // host environment variable names, passed to the program only
  std::vector<EnvVar> env;           // more of the program's environment (templates)
  std::vector<std::string> allow, deny, presets;
  std::chrono::milliseconds timeout{60000};
  /// git only: the URL every granted push goes to (https://, ssh:// or
  /// user@host:path), fixed here; the workspace's remotes are never used.
  std::string remote;
  /// host = true: implemented by the program embedding Hearth
  /// (hearth::Engine::register_command), not by a program; no exec,
  /// secrets, env or preset.
  bool host = false;
};

/// A tool of skill and prompt steps that the embedding program implements
/// (`[tools.<name>]` with host = true; hearth::Engine::register_tool).
struct ToolDef {
  std::string name;
  Location location;
};

/// The [sandbox] table: where the workflow's commands run (docs/sandbox.md).
struct SandboxSettings {
  std::string kind = "namespace";  // namespace | local
  std::string workspace = "repo";  // repo | empty | checkout
  std::string ref;                 // checkout: branch, tag or commit; empty: HEAD
  std::string network = "none";    // none | proxies | host
  std::vector<proxy::EgressTarget> egress;  // CONNECT allow-list (network = "proxies" only)
  std::optional<uint64_t> memory_bytes;
  std::optional<uint64_t> pids;
  std::optional<double> cpus;
  Location location;               // of the table; {0,0} when absent
};

/// The [model] table: which model skill and prompt steps use (docs/models.md).
struct ModelSettings {
  std::string name;      // "anthropic/<model>", "openai/<model>", "replay:<cassette>"; empty: HEARTH_MODEL
  std::string base_url;  // the provider's endpoint (openai-compatible servers)
  Location location;
};

struct Workflow {
  std::string path;         // as given to load(); used in messages
  std::string text;         // the file's full text (stored with each run)
  std::string hash;         // "sha256:<hex>" of text
  std::string name;         // defaults to the file's stem
  std::string description;
  std::vector<std::string> on_github;  // [on] github = [...] (used by `hearth ci`/`serve`)
  nlohmann::json inputs = nlohmann::json::object();  // JSON Schema of the payload (an object schema)
  std::vector<EnvVar> env;
  std::map<std::string, CommandDef> commands;  // [commands.<name>], by name
  std::map<std::string, ToolDef> tools;        // [tools.<name>], by name
  std::vector<proxy::ProxyDef> proxies;         // [proxies.<name>], in file order
  SandboxSettings sandbox;
  ModelSettings model;
  std::vector<Step> steps;  // in file order; needs form a DAG (checked)

  /// Index of the step with this id, or -1.
  int step_index(std::string_view id) const;
  /// The [proxies.<name>] table of this name, or null.
  const proxy::ProxyDef* proxy(std::string_view name) const;
};

}  // namespace hearth::workflows
