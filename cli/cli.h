// Shared pieces of the `hearth` command's subcommands. Public API only
// (include/hearth/): the commands built on it see nothing else (meson.build).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hearth/hearth.h"

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
  std::string store;  // --store or HEARTH_STORE: a postgres:// URL, in place of `state`
  std::string color = "auto";  // --color: auto | always | never
};

/// The repository root: --repo, else the nearest ancestor of the current
/// directory holding `.hearth/` or `.git`, else the current directory. Absolute.
std::string resolve_repo(const Globals& g);
/// Where runs are kept: --store's URL when given, else the state database path.
std::string resolve_state(const Globals& g, const std::string& repo);

/// `word` as one word for a POSIX shell: as it is when that is safe, else in
/// single quotes.
std::string shell_quote(const std::string& word);
/// "hearth show" with the --repo and --state the user gave (absolute), so
/// that the command printed after a run finds the run from any directory.
std::string show_command(const Globals& g);

/// Loads and validates a workflow file, printing every error to stderr.
std::optional<Workflow> load_or_report(const std::string& path);

struct RunArgs;
class Session;
/// `hearth run --run-id ID` for an ID the store already holds: a succeeded
/// run prints its outcome, anything else resumes on `session`.
int rerun_existing(Session& session, const RunArgs& args, const Workflow& wf);

struct RunArgs {
  std::string workflow;
  std::string payload;               // JSON text or @file
  std::vector<std::string> inputs;   // key=value
  int jobs = 0;
  std::string events;                // "" or "jsonl"
  std::string run_id;                // --run-id: makes the run idempotent
  std::string model;                 // --model: overrides the workflow's for skill/prompt steps
  std::string record;                // --record: cassette to write the model exchanges to
};

struct ResumeArgs {
  std::vector<std::string> run_ids;
  bool all = false;                  // every run recorded as running (interrupted)
  std::vector<std::string> from;     // re-run these steps and their dependents
  bool use_current = false;          // the workflow file as it is now, not the snapshot
  int jobs = 0;
  std::string events;
  std::string model;                 // --model, as RunArgs
};
struct ServeArgs {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  int jobs = 2;                           // runs at once
  std::string webhook_secret_file;        // else $CREDENTIALS_DIRECTORY/webhook-secret, else HEARTH_WEBHOOK_SECRET
  std::string api_token_file;             // else $CREDENTIALS_DIRECTORY/api-token, else HEARTH_API_TOKEN
  double grace = 10;                      // seconds running steps get on SIGTERM
  double request_timeout = 30;            // seconds for a whole request to arrive
  double idle_timeout = 60;               // seconds a kept-alive connection may sit idle
  size_t max_body = 25 * 1024 * 1024;     // bytes (GitHub caps payloads at 25 MB)
  double header_timeout = 10;             // seconds from a connection's start to the end of its headers
  size_t max_connections = 1024;          // open connections at most (shared fairly between peers)
  size_t max_peer_pending = 32 * 1024 * 1024;  // unchecked body bytes held for one peer
  size_t max_pending = 64 * 1024 * 1024;       // the same, all peers together
  bool accept_only = false;               // --accept: listen and store deliveries, run nothing
  bool work_only = false;                 // --work: claim and run deliveries, no listener
  double lease_timeout = 30;              // seconds without a heartbeat before another worker takes over
};
int command_serve(const Globals& g, const ServeArgs& args);
struct CiArgs {
  std::string workflow;    // --workflow NAME|GLOB; else the action input `workflow`
  std::string payload;     // --payload JSON|@file; else input `payload`; else $GITHUB_EVENT_PATH
  std::string state_path;  // --state-path DIR; else input `state-path`
  std::string resume;      // --resume true|false; else input `resume`; default true
  std::string model;       // --model; else input `model`; passed on as HEARTH_MODEL
  int jobs = 0;
};
/// `hearth ci`: the GitHub Actions step (cli/commands_ci.cpp, docs/github-actions.md).
int command_ci(const Globals& g, const CiArgs& args);

/// `hearth sandbox run`: see docs/cli.md.
struct SandboxRunArgs {
  std::string workspace;             // host directory at /workspace; empty: an empty tmpfs
  std::string network = "none";      // none | proxies | host
  std::vector<std::string> forward;  // PORT=SOCKET: 127.0.0.1:PORT inside leads to the Unix socket (implies proxies)
  std::string memory;                // "1G"; empty: no limit
  int pids = 0;                      // 0: no limit
  double cpus = 0;                   // 0: no limit
  std::string timeout;               // "30s"; empty: none
  std::vector<std::string> ro, rw;   // extra binds, same path inside
  std::vector<std::string> env;      // NAME=VALUE added to the minimal base
  bool local = false;                // --local: the local backend (no isolation), for comparison
  std::vector<std::string> command;
};
/// Exit code: the command's (128+signal when killed), 124 on timeout.
int command_sandbox_run(const SandboxRunArgs& args);
int command_run(const Globals& g, const RunArgs& args);
int command_resume(const Globals& g, const ResumeArgs& args);
/// No `workflows`: every file in <repo>/.hearth/workflows. `json`: the
/// diagnostics as one JSON object on stdout (docs/cli.md).
int command_validate(const Globals& g, const std::vector<std::string>& workflows, bool json = false);
int command_runs(const Globals& g, bool json, int limit, const std::string& workflow);
/// `transcript`: print the conversations of skill and prompt steps instead.
int command_show(const Globals& g, const std::string& run_id, bool json, bool transcript = false,
                 const std::string& step = "");

/// `hearth store check` and `hearth store migrate` (commands_store.cpp).
struct StoreArgs {
  std::string location;  // check: a path or URL; empty: the store the other commands use
  std::string from, to;  // migrate
  bool json = false;
};
/// Exit codes of `hearth store check` beyond kExitOk (nothing to do) and
/// kExitRunFailed (the store cannot be read).
inline constexpr int kExitStoreUpgrade = 3;  // opening it with this hearth upgrades its schema
inline constexpr int kExitStoreNewer = 4;    // its schema is newer than this hearth's: refused
int command_store_check(const Globals& g, const StoreArgs& args);
/// Exit: kExitOk once the copy is committed and counted, kExitRunFailed when
/// nothing was committed.
int command_store_migrate(const StoreArgs& args);

/// A --model value as the engine takes it: a relative cassette path of
/// "replay:<path>" made absolute (it names a file from where hearth was started).
std::string model_spec_arg(const std::string& model);

}  // namespace hearth::cli
