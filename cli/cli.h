// Shared pieces of the `hearth` command's subcommands.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::cli {

/// Exit codes of `hearth`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitUsage = 2;  // bad arguments, invalid workflow, unreadable payload
inline constexpr int kExitCancelled = 130;

/// Options every subcommand shares.
struct Globals {
  std::string repo;   // --repo; empty: found from the current directory
  std::string state;  // --state or HEARTH_STATE; empty: <repo>/.hearth/state.db
};

/// The repository root: --repo, else the nearest ancestor of the current
/// directory holding `.hearth/` or `.git`, else the current directory. Absolute.
std::string resolve_repo(const Globals& g);
/// The state database path.
std::string resolve_state(const Globals& g, const std::string& repo);
/// A workflow argument: an existing file path, or a name looked up as
/// <repo>/.hearth/workflows/<name>.toml. The error lists the available names.
Result<std::string> resolve_workflow(const std::string& arg, const std::string& repo);

struct RunArgs {
  std::string workflow;
  std::string payload;               // JSON text or @file
  std::vector<std::string> inputs;   // key=value
  int jobs = 0;
  std::string events;                // "" or "jsonl"
};
int command_run(const Globals& g, const RunArgs& args);
int command_validate(const Globals& g, const std::vector<std::string>& workflows);
int command_runs(const Globals& g, bool json, int limit, const std::string& workflow);
int command_show(const Globals& g, const std::string& run_id, bool json);

}  // namespace hearth::cli
