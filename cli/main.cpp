// `hearth`: the command-line client of the engine.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "command_line.h"
#include "help_text.h"
#include "hearth/process.h"

namespace {
// The first word of the command line that is not an option of `hearth`
// itself when it names no subcommand: " (did you mean 'run'?)" and the
// known names make a better message than CLI11's "A subcommand is required".
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") return std::nullopt;
    if (arg == "--repo" || arg == "--state" || arg == "--store" || arg == "--color") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') continue;
    if (std::find(names.begin(), names.end(), arg) != names.end()) return std::nullopt;
    std::string list;
    for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return "hearth: unknown command '" + arg + "'" + hearth::did_you_mean(arg, names) + "; the commands: " + list +
           " (hearth --help says more)";
  }
  return std::nullopt;
}

// The subcommand the command line names (its first word that is not an option
// of `hearth` itself or such an option's value), or "" when there is none.
// Only that subcommand's options are declared: CLI11 checks each new option
// against all before it, and declaring every command's options was most of
// what `hearth --version` did.
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") return "";
    if (arg == "--repo" || arg == "--state" || arg == "--store" || arg == "--color") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') continue;
    return arg;
  }
  return "";
}

// Writes all of `text` to stdout and ends the process: 0, or 1 when it could
// not be written (nowhere to say so: the status does). write(2) and _exit(2)
// only, for answer_early.
[[noreturn]] void print_and_exit(const char* text, std::size_t length) {
  std::size_t done = 0;
  while (done < length) {
    ssize_t n = ::write(STDOUT_FILENO, text + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(hearth::cli::kExitRunFailed);
    done += static_cast<std::size_t>(n);
  }
  _exit(hearth::cli::kExitOk);
}

// `hearth --version` (or `hearth version`) and `hearth --help` (or `-h`)
// alone are answered from the executable's .preinit_array: the dynamic
// loader calls it with main's arguments after relocating and before any
// constructor runs, so the answer pays for neither the C++ runtime's start
// (iostreams and locales, the static objects of every file) nor the command
// line (CLI11 building every subcommand). That was most of what these took
// once the libraries were lazy. The help is the text CLI11 renders from the
// same declarations when hearth is built (help_text.h). No constructor has
// run here: C functions only. Anything more on the line goes through CLI11
// in main, which says what is wrong with it. The environment is not moved
// out of /proc/<pid>/environ for these answers: nothing reads it, and the
// process ends sooner than main would have scrubbed it.
void answer_early(int argc, char** argv, char**) {
  if (argc != 2 || !argv[1]) return;
  const char* arg = argv[1];
  if (std::strcmp(arg, "--help") == 0 || std::strcmp(arg, "-h") == 0)
    print_and_exit(hearth::cli::kHelpText, sizeof hearth::cli::kHelpText - 1);
  if (std::strcmp(arg, "--version") != 0 && std::strcmp(arg, "version") != 0) return;
  char line[128] = "hearth ";
  std::strncat(line, hearth::version(), sizeof line - sizeof "hearth " - 1);
  std::strcat(line, "\n");
  print_and_exit(line, std::strlen(line));
}
__attribute__((section(".preinit_array"), used)) void (*const kAnswerEarly)(int, char**, char**) = answer_early;

}  // namespace

int main(int argc, char** argv) {
  using namespace hearth::cli;
  // Before anything reads the environment or starts a thread: secrets given
  // in it leave /proc/<pid>/environ, and no process of this user may read
  // this one's memory. Commands read the variables they declare from the copy.
  if (auto s = hearth::scrub_process_environment(); !s.ok()) std::cerr << "hearth: warning: " << s.message() << "\n";
  // Named here: CLI11 would otherwise print argv[0], the path it was started by.
  CLI::App app{kAppDescription, kAppName};
  CommandLine c;
  declare_command_line(app, c, command_word(argc, argv), hearth::version());
  if (auto unknown = unknown_command(app, argc, argv)) {
    std::cerr << *unknown << "\n";
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (c.version_cmd->parsed()) {
    std::cout << "hearth " << hearth::version() << "\n";
    return kExitOk;
  }
  if (c.run_cmd->parsed()) return command_run(c.g, c.run);
  if (c.resume_cmd->parsed()) return command_resume(c.g, c.resume);
  if (c.validate_cmd->parsed()) return command_validate(c.g, c.to_validate, c.validate_json);
  if (c.runs_cmd->parsed()) return command_runs(c.g, c.runs_json, c.runs_limit, c.runs_workflow);
  if (c.ci_cmd->parsed()) return command_ci(c.g, c.ci);
  if (c.show_cmd->parsed()) return command_show(c.g, c.show_id, c.show_json, c.show_transcript, c.show_step);
  if (c.serve_cmd->parsed()) return command_serve(c.g, c.serve);
  if (c.sandbox_run->parsed()) return command_sandbox_run(c.sbx);
  if (c.store_check->parsed()) return command_store_check(c.g, c.store);
  if (c.store_migrate->parsed()) return command_store_migrate(c.store);
  return kExitUsage;
}
