#include "ci/actions_env.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace hearth::ci {

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Result<ActionsEnv> ActionsEnv::read(const EnvLookup& env) {
  auto get = [&](const char* name) { return env(name).value_or(""); };
  ActionsEnv a;
  a.actions = get("GITHUB_ACTIONS") == "true";
  a.event_name = get("GITHUB_EVENT_NAME");
  a.event_path = get("GITHUB_EVENT_PATH");
  a.output_path = get("GITHUB_OUTPUT");
  a.summary_path = get("GITHUB_STEP_SUMMARY");
  a.run_id = get("GITHUB_RUN_ID");
  a.repository = get("GITHUB_REPOSITORY");
  a.job = get("GITHUB_JOB");
  a.workspace = get("GITHUB_WORKSPACE");
  a.server_url = get("GITHUB_SERVER_URL");
  a.sha = get("GITHUB_SHA");
  a.ref = get("GITHUB_REF");
  std::string attempt = get("GITHUB_RUN_ATTEMPT");
  if (!attempt.empty()) {
    bool digits = attempt.size() <= 6 && std::all_of(attempt.begin(), attempt.end(), ::isdigit);
    if (!digits || std::stoi(attempt) < 1)
      return Error{"GITHUB_RUN_ATTEMPT must be a positive number, not '" + attempt + "'"};
    a.run_attempt = std::stoi(attempt);
  }
  return a;
}

std::string get_input(const EnvLookup& env, const std::string& name, bool trim) {
  std::string var = "INPUT_";
  for (char c : name) var += c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string v = env(var).value_or("");
  if (!trim) return v;
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  auto b = std::find_if_not(v.begin(), v.end(), space);
  auto e = std::find_if_not(v.rbegin(), v.rend(), space).base();
  return b < e ? std::string(b, e) : std::string();
}

Result<std::optional<bool>> get_boolean_input(const EnvLookup& env, const std::string& name) {
  std::string v = get_input(env, name);
  if (v.empty()) return std::optional<bool>();
  if (v == "true" || v == "True" || v == "TRUE") return std::optional<bool>(true);
  if (v == "false" || v == "False" || v == "FALSE") return std::optional<bool>(false);
  return Error{"Input does not meet YAML 1.2 \"Core Schema\" specification: " + name +
               "\nSupport boolean input list: `true | True | TRUE | false | False | FALSE`"};
}

}  // namespace hearth::ci
