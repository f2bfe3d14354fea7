// What a GitHub Actions job tells a step through its environment: the
// GITHUB_* variables, and action inputs as INPUT_<NAME> (the toolkit's rules).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "util/status.h"

namespace hearth::ci {

/// Looks an environment variable up; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (getenv).
EnvLookup process_env();

/// The GITHUB_* variables a step sees. Missing variables are empty.
struct ActionsEnv {
  bool actions = false;      // GITHUB_ACTIONS == "true"
  std::string event_name;    // GITHUB_EVENT_NAME: "issues", "push", ...
  std::string event_path;    // GITHUB_EVENT_PATH: the webhook payload, JSON
  std::string output_path;   // GITHUB_OUTPUT: step outputs (file commands)
  std::string summary_path;  // GITHUB_STEP_SUMMARY: Markdown for the job summary
  std::string run_id;        // GITHUB_RUN_ID: the same across re-runs of a workflow run
  int run_attempt = 1;       // GITHUB_RUN_ATTEMPT: 1, then 2, 3... on "Re-run jobs"
  std::string repository;    // GITHUB_REPOSITORY: "owner/name"
  std::string job;           // GITHUB_JOB: the job's id in the Actions workflow
  std::string workspace;     // GITHUB_WORKSPACE: where actions/checkout puts the repository
  std::string server_url;    // GITHUB_SERVER_URL: "https://github.com"
  std::string sha;           // GITHUB_SHA
  std::string ref;           // GITHUB_REF

  /// Reads them. A GITHUB_RUN_ATTEMPT that is not a positive number is an
  /// error naming the variable.
  static Result<ActionsEnv> read(const EnvLookup& env = process_env());
};

/// An action input the way the toolkit's core.getInput reads it: from
/// INPUT_<name with spaces replaced by '_', upper-cased>, trimmed unless
/// `trim` is false; empty when unset.
std::string get_input(const EnvLookup& env, const std::string& name, bool trim = true);

/// core.getBooleanInput: true|True|TRUE, false|False|FALSE (YAML 1.2 core
/// schema); nullopt when the input is empty; an error for anything else.
Result<std::optional<bool>> get_boolean_input(const EnvLookup& env, const std::string& name);

}  // namespace hearth::ci
