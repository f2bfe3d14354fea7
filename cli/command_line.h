// hearth's command line: every subcommand and option, declared on a
// CLI::App. main.cpp parses with it; help_text_gen.cpp renders `hearth
// --help` from it when hearth is built, so that the text hearth prints before
// any constructor runs is the one CLI11 would print.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli.h"

namespace hearth::cli {

/// The name and description the application is created with (the first line of --help).
inline constexpr const char* kAppName = "hearth";
inline constexpr const char* kAppDescription = "Hearth: an event-driven workflow engine for CI pipelines";

/// What the command line sets, and the subcommands to dispatch on. CLI11
/// keeps pointers to the members: never moved or copied.
struct CommandLine {
  Globals g;
  RunArgs run;
  ResumeArgs resume;
  std::vector<std::string> to_validate;
  bool validate_json = false;
  bool runs_json = false;
  int runs_limit = 50;
  std::string runs_workflow;
  bool show_json = false;
  std::string show_id;
  bool show_transcript = false;
  std::string show_step;
  ServeArgs serve;
  CiArgs ci;
  SandboxRunArgs sbx;
  StoreArgs store;

  CLI::App* version_cmd = nullptr;
  CLI::App* run_cmd = nullptr;
  CLI::App* resume_cmd = nullptr;
  CLI::App* validate_cmd = nullptr;
  CLI::App* runs_cmd = nullptr;
  CLI::App* show_cmd = nullptr;
  CLI::App* serve_cmd = nullptr;
  CLI::App* ci_cmd = nullptr;
  CLI::App* sandbox_run = nullptr;
  CLI::App* store_check = nullptr;
  CLI::App* store_migrate = nullptr;

  CommandLine() = default;
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;
};

/// Declares on `app` (created with kAppName and kAppDescription) the shared
/// options, every subcommand with its description (--help and "did you mean"
/// list them all), and the options of the subcommand `chosen` only: CLI11
/// checks each new option against all before it, and declaring every
/// command's options was most of what a short command did. `version` is what
/// --version prints after "hearth ".
void declare_command_line(CLI::App& app, CommandLine& c, const std::string& chosen, const std::string& version);

}  // namespace hearth::cli
