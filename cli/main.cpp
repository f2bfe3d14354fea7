// `hearth`: the command-line client of the engine.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "hearth/process.h"

namespace {
// CLI::PositiveNumber checks a double and prints its bounds with 300 digits
// ("Value 0 not in range 0.000000 to 1797..."); this says what is wanted.
const CLI::Validator kAtLeastOne(
    [](std::string& in) {
      int v = 0;
      if (CLI::detail::lexical_cast(in, v) && v >= 1) return std::string();
      return "expected a whole number of at least 1, not '" + in + "'";
    },
    "INT>=1");
// The value is not repeated in the message: it may hold a password.
const CLI::Validator kPostgresUrl(
    [](std::string& in) -> std::string {
      if (in.rfind("postgres://", 0) == 0 || in.rfind("postgresql://", 0) == 0) return "";
      return "expected a postgres:// or postgresql:// URL (a SQLite file goes in --state)";
    },
    "URL");
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
    if (arg == "--repo" || arg == "--state" || arg == "--color") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') continue;
    return arg;
  }
  return "";
}

const char* kFooter =
    "Examples:\n"
    "  hearth run release --input version=1.2.0   run .hearth/workflows/release.toml\n"
    "  hearth validate                            check every workflow in .hearth/workflows\n"
    "  hearth runs                                list runs, newest first\n"
    "  hearth show RUN_ID                         every step of a run, its cause of failure\n"
    "  hearth resume --all                        continue runs a crash interrupted\n"
    "\n"
    "Each command's options: hearth COMMAND --help. The manual: docs/cli.md\n"
    "(workflows: docs/workflow-reference.md).";

}  // namespace

int main(int argc, char** argv) {
  using namespace hearth::cli;
  // Before anything reads the environment or starts a thread: secrets given
  // in it leave /proc/<pid>/environ, and no process of this user may read
  // this one's memory. Commands read the variables they declare from the copy.
  if (auto s = hearth::scrub_process_environment(); !s.ok()) std::cerr << "hearth: warning: " << s.message() << "\n";
  // Named here: CLI11 would otherwise print argv[0], the path it was started by.
  CLI::App app{"Hearth: an event-driven workflow engine for CI pipelines", "hearth"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string("hearth ") + hearth::version(), "Print the version and exit");
  auto* version_cmd = app.add_subcommand("version", "Print the version");
  const std::string chosen = command_word(argc, argv);
  Globals g;
  app.add_option("--repo", g.repo, "Repository root (default: nearest ancestor with .hearth/ or .git)");
  app.add_option("--state", g.state, "State database (default: $HEARTH_STATE or <repo>/.hearth/state.db)")
      ->envname("HEARTH_STATE");
  app.add_option("--store", g.store,
                 "Keep runs in a PostgreSQL database instead: postgres://user@host/db (default: $HEARTH_STORE)")
      ->envname("HEARTH_STORE")
      ->check(kPostgresUrl);
  app.add_option("--color", g.color,
                 "Colour: auto (on a terminal, unless TERM=dumb or NO_COLOR is set), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "Run a workflow");
  if (chosen == "run") {
    run_cmd->footer("Examples:\n  hearth run release --input version=1.2.0\n  hearth run ci/build.toml --payload @event.json --events jsonl\n"
                    "Docs: docs/cli.md (hearth run), docs/workflow-reference.md (inputs)");
    run_cmd->add_option("workflow", run.workflow, "Workflow file, or name in .hearth/workflows/")->required();
    run_cmd->add_option("--payload", run.payload, "Payload as JSON text, or @file.json");
    run_cmd->add_option("--input,-i", run.inputs, "Set one input: key=value (repeatable)");
    run_cmd->add_option("--jobs,-j", run.jobs, "Most steps running at once (default: number of CPUs)")
        ->check(kAtLeastOne);
    run_cmd->add_option("--events", run.events, "Print events as JSON lines on stdout")
        ->check(CLI::IsMember({"jsonl"}));
    run_cmd->add_option("--model", run.model,
                        "Model of skill and prompt steps, overriding the workflow's: anthropic/NAME, openai/NAME, "
                        "or replay:CASSETTE to play a recording back offline");

    run_cmd->add_option("--run-id", run.run_id,
                        "Idempotent run id: a new id starts a run, an unfinished run resumes, a succeeded one "
                        "prints its outcome");

    run_cmd->add_option("--record", run.record,
                        "Record every model exchange of skill and prompt steps to this cassette (replay it with "
                        "--model replay:FILE)");
  }

  ResumeArgs resume;
  auto* resume_cmd = app.add_subcommand("resume", "Continue unfinished runs from their last checkpoint");
  if (chosen == "resume") {
    resume_cmd->footer("Examples:\n  hearth resume --all\n  hearth resume RUN_ID --from test\nDocs: docs/cli.md, docs/durability.md");
    resume_cmd->add_option("run-ids", resume.run_ids, "Run ids (see `hearth runs`)");
    resume_cmd->add_flag("--all", resume.all, "Resume every run that was interrupted (recorded as running)");
    resume_cmd->add_option("--from", resume.from, "Re-run this step and every step that needs it (repeatable)");
    resume_cmd->add_option("--jobs,-j", resume.jobs, "Most steps running at once (default: number of CPUs)")
        ->check(kAtLeastOne);
    resume_cmd->add_flag("--use-current", resume.use_current,
                         "Use the workflow file as it is now instead of the run's snapshot");
    resume_cmd->add_option("--events", resume.events, "Print events as JSON lines on stdout")
        ->check(CLI::IsMember({"jsonl"}));
    resume_cmd->add_option("--model", resume.model, "Model of skill and prompt steps, as for run");
  }

  std::vector<std::string> to_validate;
  bool validate_json = false;
  auto* validate_cmd = app.add_subcommand("validate", "Check workflows without running them");
  if (chosen == "validate") {
    validate_cmd->footer("Examples:\n  hearth validate\n  hearth validate release ci/build.toml --json\nDocs: docs/cli.md (hearth validate)");
    validate_cmd->add_option("workflows", to_validate, "Workflow files or names (default: every file in .hearth/workflows)");
    validate_cmd->add_flag("--json", validate_json,
                           "Print the diagnostics as JSON: file, line, column, severity, message");
  }

  bool runs_json = false;
  int runs_limit = 50;
  std::string runs_workflow;
  auto* runs_cmd = app.add_subcommand("runs", "List runs, newest first");
  if (chosen == "runs") {
    runs_cmd->footer("Examples:\n  hearth runs -n 5\n  hearth runs --workflow release --json\nDocs: docs/cli.md (hearth runs)");
    runs_cmd->add_flag("--json", runs_json, "Machine-readable output");
    runs_cmd->add_option("--limit,-n", runs_limit, "How many runs to list")->check(kAtLeastOne);
    runs_cmd->add_option("--workflow,-w", runs_workflow, "Only runs of this workflow");
  }

  bool show_json = false;
  std::string show_id;
  bool show_transcript = false;
  std::string show_step;
  auto* show_cmd = app.add_subcommand("show", "Show a run: every step, its attempts and output");
  if (chosen == "show") {
    show_cmd->footer("Examples:\n  hearth show RUN_ID\n  hearth show RUN_ID --transcript --step review\nDocs: docs/cli.md (hearth show)");
    show_cmd->add_option("run-id", show_id, "Run id (see `hearth runs`)")->required();
    show_cmd->add_flag("--json", show_json, "Machine-readable output");
    show_cmd->add_flag("--transcript", show_transcript,
                       "Print the conversation of each skill or prompt step: turns, tool calls, results");
    show_cmd->add_option("--step", show_step, "Only this step (with --transcript)");
  }

  ServeArgs serve;
  auto* serve_cmd = app.add_subcommand("serve", "Receive GitHub webhooks and run the matching workflows");
  if (chosen == "serve") {
    serve_cmd->footer("Example:\n  hearth serve --listen 127.0.0.1:8080 --webhook-secret-file /etc/hearth/secret\nDocs: docs/serve.md");
    serve_cmd->add_option("--listen", serve.listen, "Address to listen on, HOST:PORT (port 0: any free port)");
    serve_cmd->add_option("--jobs,-j", serve.jobs, "Most runs at once (default: 2)")->check(kAtLeastOne);
    serve_cmd->add_option("--webhook-secret-file,--secret-file", serve.webhook_secret_file,
                          "File holding the webhook secret (default: the systemd credential webhook-secret, "
                          "else $HEARTH_WEBHOOK_SECRET)");
    serve_cmd->add_option("--api-token-file", serve.api_token_file,
                          "File holding the read endpoints' token (default: the systemd credential api-token, "
                          "else $HEARTH_API_TOKEN)");
    serve_cmd->add_option("--grace", serve.grace, "Seconds running steps get on SIGTERM before they are cancelled")
        ->check(CLI::NonNegativeNumber);
    serve_cmd->add_option("--request-timeout", serve.request_timeout, "Seconds a request may take to arrive")
        ->check(CLI::PositiveNumber);
    serve_cmd->add_option("--idle-timeout", serve.idle_timeout, "Seconds an idle kept-alive connection stays open")
        ->check(CLI::PositiveNumber);
    serve_cmd->add_option("--max-body", serve.max_body, "Largest request body in bytes (default: 25 MiB)");
    serve_cmd->add_option("--header-timeout", serve.header_timeout,
                          "Seconds from a connection's start (or a request's first byte) to the end of its headers "
                          "(default: 10)")
        ->check(CLI::PositiveNumber);
    serve_cmd->add_option("--max-connections", serve.max_connections,
                          "Open connections at most, shared fairly between client addresses (default: 1024)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    serve_cmd->add_option("--max-peer-pending", serve.max_peer_pending,
                          "Body bytes held for one client address before signatures are checked (default: 32 MiB; "
                          "at least --max-body)");
    serve_cmd->add_option("--max-pending", serve.max_pending,
                          "Body bytes held for all clients before signatures are checked (default: 64 MiB)");
    auto* accept = serve_cmd->add_flag("--accept", serve.accept_only,
                                       "Only accept deliveries (listen, store them); run nothing. Needs a shared "
                                       "--store postgres://...");
    auto* work = serve_cmd->add_flag("--work", serve.work_only,
                                     "Only claim and run stored deliveries; no listener. Needs a shared "
                                     "--store postgres://...");
    accept->excludes(work);
    serve_cmd->add_option("--lease-timeout", serve.lease_timeout,
                          "Seconds without a heartbeat after which another worker takes over this one's runs and "
                          "deliveries (default: 30)")
        ->check(CLI::Range(0.5, 86400.0));
  }
  CiArgs ci;
  auto* ci_cmd = app.add_subcommand("ci", "Run the workflows a GitHub Actions event starts (the Actions step)");
  if (chosen == "ci") {
    ci_cmd->footer("Example (in a GitHub Actions job):\n  hearth ci --workflow triage\nDocs: docs/github-actions.md");
    ci_cmd->add_option("--workflow,-w", ci.workflow, "Only this workflow (name or glob), whatever its [on]");
    ci_cmd->add_option("--payload", ci.payload, "Payload instead of $GITHUB_EVENT_PATH: JSON text or @file.json");
    ci_cmd->add_option("--state-path", ci.state_path, "Directory of the state database (default: <repo>/.hearth)");
    ci_cmd->add_option("--resume", ci.resume, "Resume this job's unfinished runs on a re-run (default: true)")
        ->check(CLI::IsMember({"true", "True", "TRUE", "false", "False", "FALSE"}));
    ci_cmd->add_option("--model", ci.model, "Model for skill steps (sets HEARTH_MODEL)");
    ci_cmd->add_option("--jobs,-j", ci.jobs, "Most steps running at once (default: number of CPUs)")->check(kAtLeastOne);
  }
  SandboxRunArgs sbx;
  auto* sandbox_cmd = app.add_subcommand("sandbox", "Run a command in the sandbox, the way a step would");
  sandbox_cmd->require_subcommand(1);
  auto* sandbox_run = sandbox_cmd->add_subcommand("run", "Run one command isolated: hearth sandbox run [options] -- CMD ARGS...");
  if (chosen == "sandbox") {
    sandbox_run->footer("Example:\n  hearth sandbox run --workspace . --network none -- make test\nDocs: docs/sandbox.md, docs/cli.md");
    sandbox_run->add_option("--workspace", sbx.workspace, "Directory mounted read-write at /workspace (default: empty)");
    sandbox_run->add_option("--network", sbx.network, "none (loopback only), proxies (loopback and --forward ports) or host")
        ->check(CLI::IsMember({"none", "proxies", "host"}));
    sandbox_run->add_option("--forward", sbx.forward,
                            "PORT=SOCKET: connections to 127.0.0.1:PORT inside reach the host's Unix socket SOCKET "
                            "(repeatable; implies --network proxies)")
        ->allow_extra_args(false);
    sandbox_run->add_option("--memory", sbx.memory, "Memory limit, like 512M or 1G");
    sandbox_run->add_option("--pids", sbx.pids, "Most processes at once")->check(kAtLeastOne);
    sandbox_run->add_option("--cpus", sbx.cpus, "CPU share, in CPUs (like 0.5)");
    sandbox_run->add_option("--timeout", sbx.timeout, "Kill the whole sandbox after this long, like 30s");
    sandbox_run->add_option("--ro", sbx.ro, "Bind a host path read-only at the same path (repeatable)")
        ->allow_extra_args(false);
    sandbox_run->add_option("--rw", sbx.rw, "Bind a host path read-write at the same path (repeatable)")
        ->allow_extra_args(false);
    sandbox_run->add_option("--env,-e", sbx.env, "Set NAME=VALUE in the command's environment (repeatable)")
        ->allow_extra_args(false);
    sandbox_run->add_flag("--local", sbx.local, "Use the local backend (no isolation), for comparison");
    sandbox_run->add_option("command", sbx.command, "The command and its arguments, after --")->required();
  }

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
  if (version_cmd->parsed()) {
    std::cout << "hearth " << hearth::version() << "\n";
    return kExitOk;
  }
  if (run_cmd->parsed()) return command_run(g, run);
  if (resume_cmd->parsed()) return command_resume(g, resume);
  if (validate_cmd->parsed()) return command_validate(g, to_validate, validate_json);
  if (runs_cmd->parsed()) return command_runs(g, runs_json, runs_limit, runs_workflow);
  if (ci_cmd->parsed()) return command_ci(g, ci);
  if (show_cmd->parsed()) return command_show(g, show_id, show_json, show_transcript, show_step);
  if (serve_cmd->parsed()) return command_serve(g, serve);
  if (sandbox_run->parsed()) return command_sandbox_run(sbx);
  return kExitUsage;
}
