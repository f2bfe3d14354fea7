// The declarations of hearth's command line (command_line.h).
#include "command_line.h"

namespace hearth::cli {

namespace {

// CLI::PositiveNumber checks a double and prints its bounds with 300 digits
// ("Value 0 not in range 0.000000 to 1797..."); this says what is wanted.
// Built when an option first needs it, not before main: most commands never do.
const CLI::Validator& at_least_one() {
  static const CLI::Validator v(
      [](std::string& in) {
        int n = 0;
        if (CLI::detail::lexical_cast(in, n) && n >= 1) return std::string();
        return "expected a whole number of at least 1, not '" + in + "'";
      },
      "INT>=1");
  return v;
}
// The value is not repeated in the message: it may hold a password.
const CLI::Validator& postgres_url() {
  static const CLI::Validator v(
      [](std::string& in) -> std::string {
        if (in.rfind("postgres://", 0) == 0 || in.rfind("postgresql://", 0) == 0) return "";
        return "expected a postgres:// or postgresql:// URL (a SQLite file goes in --state)";
      },
      "URL");
  return v;
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

void declare_command_line(CLI::App& app, CommandLine& c, const std::string& chosen, const std::string& version) {
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", "hearth " + version, "Print the version and exit");
  c.version_cmd = app.add_subcommand("version", "Print the version");
  Globals& g = c.g;
  app.add_option("--repo", g.repo, "Repository root (default: nearest ancestor with .hearth/ or .git)");
  app.add_option("--state", g.state, "State database (default: $HEARTH_STATE or <repo>/.hearth/state.db)")
      ->envname("HEARTH_STATE");
  app.add_option("--store", g.store,
                 "Keep runs in a PostgreSQL database instead: postgres://user@host/db (default: $HEARTH_STORE)")
      ->envname("HEARTH_STORE")
      ->check(postgres_url());
  app.add_option("--color", g.color,
                 "Colour: auto (on a terminal, unless TERM=dumb or NO_COLOR is set), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));

  RunArgs& run = c.run;
  c.run_cmd = app.add_subcommand("run", "Run a workflow");
  if (chosen == "run") {
    c.run_cmd->footer("Examples:\n  hearth run release --input version=1.2.0\n  hearth run ci/build.toml --payload @event.json --events jsonl\n"
                    "Docs: docs/cli.md (hearth run), docs/workflow-reference.md (inputs)");
    c.run_cmd->add_option("workflow", run.workflow, "Workflow file, or name in .hearth/workflows/")->required();
    c.run_cmd->add_option("--payload", run.payload, "Payload as JSON text, or @file.json");
    c.run_cmd->add_option("--input,-i", run.inputs, "Set one input: key=value (repeatable)");
    c.run_cmd->add_option("--jobs,-j", run.jobs, "Most steps running at once (default: number of CPUs)")
        ->check(at_least_one());
    c.run_cmd->add_option("--events", run.events, "Print events as JSON lines on stdout")
        ->check(CLI::IsMember({"jsonl"}));
    c.run_cmd->add_option("--model", run.model,
                        "Model of skill and prompt steps, overriding the workflow's: anthropic/NAME, openai/NAME, "
                        "or replay:CASSETTE to play a recording back offline");

    c.run_cmd->add_option("--run-id", run.run_id,
                        "Idempotent run id: a new id starts a run, an unfinished run resumes, a succeeded one "
                        "prints its outcome");

    c.run_cmd->add_option("--record", run.record,
                        "Record every model exchange of skill and prompt steps to this cassette (replay it with "
                        "--model replay:FILE)");
  }

  ResumeArgs& resume = c.resume;
  c.resume_cmd = app.add_subcommand("resume", "Continue unfinished runs from their last checkpoint");
  if (chosen == "resume") {
    c.resume_cmd->footer("Examples:\n  hearth resume --all\n  hearth resume RUN_ID --from test\nDocs: docs/cli.md, docs/durability.md");
    c.resume_cmd->add_option("run-ids", resume.run_ids, "Run ids (see `hearth runs`)");
    c.resume_cmd->add_flag("--all", resume.all, "Resume every run that was interrupted (recorded as running)");
    c.resume_cmd->add_option("--from", resume.from, "Re-run this step and every step that needs it (repeatable)");
    c.resume_cmd->add_option("--jobs,-j", resume.jobs, "Most steps running at once (default: number of CPUs)")
        ->check(at_least_one());
    c.resume_cmd->add_flag("--use-current", resume.use_current,
                         "Use the workflow file as it is now instead of the run's snapshot");
    c.resume_cmd->add_option("--events", resume.events, "Print events as JSON lines on stdout")
        ->check(CLI::IsMember({"jsonl"}));
    c.resume_cmd->add_option("--model", resume.model, "Model of skill and prompt steps, as for run");
  }

  c.validate_cmd = app.add_subcommand("validate", "Check workflows without running them");
  if (chosen == "validate") {
    c.validate_cmd->footer("Examples:\n  hearth validate\n  hearth validate release ci/build.toml --json\nDocs: docs/cli.md (hearth validate)");
    c.validate_cmd->add_option("workflows", c.to_validate, "Workflow files or names (default: every file in .hearth/workflows)");
    c.validate_cmd->add_flag("--json", c.validate_json,
                           "Print the diagnostics as JSON: file, line, column, severity, message");
  }

  c.runs_cmd = app.add_subcommand("runs", "List runs, newest first");
  if (chosen == "runs") {
    c.runs_cmd->footer("Examples:\n  hearth runs -n 5\n  hearth runs --workflow release --json\nDocs: docs/cli.md (hearth runs)");
    c.runs_cmd->add_flag("--json", c.runs_json, "Machine-readable output");
    c.runs_cmd->add_option("--limit,-n", c.runs_limit, "How many runs to list")->check(at_least_one());
    c.runs_cmd->add_option("--workflow,-w", c.runs_workflow, "Only runs of this workflow");
  }

  c.show_cmd = app.add_subcommand("show", "Show a run: every step, its attempts and output");
  if (chosen == "show") {
    c.show_cmd->footer("Examples:\n  hearth show RUN_ID\n  hearth show RUN_ID --transcript --step review\nDocs: docs/cli.md (hearth show)");
    c.show_cmd->add_option("run-id", c.show_id, "Run id (see `hearth runs`)")->required();
    c.show_cmd->add_flag("--json", c.show_json, "Machine-readable output");
    c.show_cmd->add_flag("--transcript", c.show_transcript,
                       "Print the conversation of each skill or prompt step: turns, tool calls, results");
    c.show_cmd->add_option("--step", c.show_step, "Only this step (with --transcript)");
  }

  ServeArgs& serve = c.serve;
  c.serve_cmd = app.add_subcommand("serve", "Receive GitHub webhooks and run the matching workflows");
  if (chosen == "serve") {
    c.serve_cmd->footer("Example:\n  hearth serve --listen 127.0.0.1:8080 --webhook-secret-file /etc/hearth/secret\nDocs: docs/serve.md");
    c.serve_cmd->add_option("--listen", serve.listen, "Address to listen on, HOST:PORT (port 0: any free port)");
    c.serve_cmd->add_option("--jobs,-j", serve.jobs, "Most runs at once (default: 2)")->check(at_least_one());
    c.serve_cmd->add_option("--webhook-secret-file,--secret-file", serve.webhook_secret_file,
                          "File holding the webhook secret (default: the systemd credential webhook-secret, "
                          "else $HEARTH_WEBHOOK_SECRET)");
    c.serve_cmd->add_option("--api-token-file", serve.api_token_file,
                          "File holding the read endpoints' token (default: the systemd credential api-token, "
                          "else $HEARTH_API_TOKEN)");
    c.serve_cmd->add_option("--grace", serve.grace, "Seconds running steps get on SIGTERM before they are cancelled")
        ->check(CLI::NonNegativeNumber);
    c.serve_cmd->add_option("--request-timeout", serve.request_timeout, "Seconds a request may take to arrive")
        ->check(CLI::PositiveNumber);
    c.serve_cmd->add_option("--idle-timeout", serve.idle_timeout, "Seconds an idle kept-alive connection stays open")
        ->check(CLI::PositiveNumber);
    c.serve_cmd->add_option("--max-body", serve.max_body, "Largest request body in bytes (default: 25 MiB)");
    c.serve_cmd->add_option("--header-timeout", serve.header_timeout,
                          "Seconds from a connection's start (or a request's first byte) to the end of its headers "
                          "(default: 10)")
        ->check(CLI::PositiveNumber);
    c.serve_cmd->add_option("--max-connections", serve.max_connections,
                          "Open connections at most, shared fairly between client addresses (default: 1024)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    c.serve_cmd->add_option("--max-peer-pending", serve.max_peer_pending,
                          "Body bytes held for one client address before signatures are checked (default: 32 MiB; "
                          "at least --max-body)");
    c.serve_cmd->add_option("--max-pending", serve.max_pending,
                          "Body bytes held for all clients before signatures are checked (default: 64 MiB)");
    auto* accept = c.serve_cmd->add_flag("--accept", serve.accept_only,
                                         "Only accept deliveries (listen, store them); run nothing. Needs a shared "
                                         "--store postgres://...");
    auto* work = c.serve_cmd->add_flag("--work", serve.work_only,
                                       "Only claim and run stored deliveries; no listener. Needs a shared "
                                       "--store postgres://...");
    accept->excludes(work);
    c.serve_cmd->add_option("--lease-timeout", serve.lease_timeout,
                            "Seconds without a heartbeat after which another worker takes over this one's runs and "
                            "deliveries (default: 30)")
        ->check(CLI::Range(0.5, 86400.0));
  }
  CiArgs& ci = c.ci;
  c.ci_cmd = app.add_subcommand("ci", "Run the workflows a GitHub Actions event starts (the Actions step)");
  if (chosen == "ci") {
    c.ci_cmd->footer("Example (in a GitHub Actions job):\n  hearth ci --workflow triage\nDocs: docs/github-actions.md");
    c.ci_cmd->add_option("--workflow,-w", ci.workflow, "Only this workflow (name or glob), whatever its [on]");
    c.ci_cmd->add_option("--payload", ci.payload, "Payload instead of $GITHUB_EVENT_PATH: JSON text or @file.json");
    c.ci_cmd->add_option("--state-path", ci.state_path, "Directory of the state database (default: <repo>/.hearth)");
    c.ci_cmd->add_option("--resume", ci.resume, "Resume this job's unfinished runs on a re-run (default: true)")
        ->check(CLI::IsMember({"true", "True", "TRUE", "false", "False", "FALSE"}));
    c.ci_cmd->add_option("--model", ci.model, "Model for skill steps (sets HEARTH_MODEL)");
    c.ci_cmd->add_option("--jobs,-j", ci.jobs, "Most steps running at once (default: number of CPUs)")->check(at_least_one());
  }
  SandboxRunArgs& sbx = c.sbx;
  CLI::App* sandbox_cmd = app.add_subcommand("sandbox", "Run a command in the sandbox, the way a step would");
  sandbox_cmd->require_subcommand(1);
  c.sandbox_run = sandbox_cmd->add_subcommand("run", "Run one command isolated: hearth sandbox run [options] -- CMD ARGS...");
  if (chosen == "sandbox") {
    c.sandbox_run->footer("Example:\n  hearth sandbox run --workspace . --network none -- make test\nDocs: docs/sandbox.md, docs/cli.md");
    c.sandbox_run->add_option("--workspace", sbx.workspace, "Directory mounted read-write at /workspace (default: empty)");
    c.sandbox_run->add_option("--network", sbx.network, "none (loopback only), proxies (loopback and --forward ports) or host")
        ->check(CLI::IsMember({"none", "proxies", "host"}));
    c.sandbox_run->add_option("--forward", sbx.forward,
                            "PORT=SOCKET: connections to 127.0.0.1:PORT inside reach the host's Unix socket SOCKET "
                            "(repeatable; implies --network proxies)")
        ->allow_extra_args(false);
    c.sandbox_run->add_option("--memory", sbx.memory, "Memory limit, like 512M or 1G");
    c.sandbox_run->add_option("--pids", sbx.pids, "Most processes at once")->check(at_least_one());
    c.sandbox_run->add_option("--cpus", sbx.cpus, "CPU share, in CPUs (like 0.5)");
    c.sandbox_run->add_option("--timeout", sbx.timeout, "Kill the whole sandbox after this long, like 30s");
    c.sandbox_run->add_option("--ro", sbx.ro, "Bind a host path read-only at the same path (repeatable)")
        ->allow_extra_args(false);
    c.sandbox_run->add_option("--rw", sbx.rw, "Bind a host path read-write at the same path (repeatable)")
        ->allow_extra_args(false);
    c.sandbox_run->add_option("--env,-e", sbx.env, "Set NAME=VALUE in the command's environment (repeatable)")
        ->allow_extra_args(false);
    c.sandbox_run->add_flag("--local", sbx.local, "Use the local backend (no isolation), for comparison");
    c.sandbox_run->add_option("command", sbx.command, "The command and its arguments, after --")->required();
  }

  StoreArgs& store = c.store;
  CLI::App* store_cmd = app.add_subcommand("store", "Check a run store's schema, or migrate a history to another store");
  store_cmd->require_subcommand(1);
  c.store_check = store_cmd->add_subcommand("check", "Report a store's backend, schema version and what a migration would do");
  c.store_migrate = store_cmd->add_subcommand("migrate", "Copy a whole history into an empty store (SQLite to PostgreSQL, or back)");
  if (chosen == "store") {
    store_cmd->footer("Examples:\n  hearth store check\n  hearth store migrate --from .hearth/state.db --to postgres://hearth@db/hearth\n"
                      "Docs: docs/cli.md (hearth store), docs/serve.md (Scaling out)");
    c.store_check->footer("Examples:\n  hearth store check\n  hearth store check --store \"$HEARTH_STORE\" --json\n"
                          "Exit codes: 0 nothing to do, 3 an upgrade is due, 4 refused (newer schema), 1 unreadable.\n"
                          "Docs: docs/cli.md (hearth store)");
    c.store_check->add_option("location", store.location,
                              "A SQLite file or a postgres:// URL (default: the store the other commands use)");
    c.store_check->add_flag("--json", store.json, "Machine-readable output");
    c.store_migrate->footer("Example:\n  hearth store migrate --from .hearth/state.db --to postgres://hearth@db/hearth\n"
                            "Docs: docs/serve.md (Migrating from SQLite), docs/cli.md (hearth store)");
    c.store_migrate->add_option("--from", store.from, "The store to copy: a SQLite file or a postgres:// URL")->required();
    c.store_migrate->add_option("--to", store.to, "The empty store to copy into (default: $HEARTH_STORE)")
        ->envname("HEARTH_STORE")
        ->required();
    c.store_migrate->add_flag("--json", store.json, "Machine-readable output");
  }
}

}  // namespace hearth::cli
