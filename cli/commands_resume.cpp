// `hearth resume` and the idempotent side of `hearth run --run-id`.
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "session.h"

namespace hearth::cli {

namespace {

// The workflow file as it is on disk now, if it still loads; prints why not.
std::optional<Workflow> current_workflow(const RunInfo& run) {
  std::ifstream in(run.workflow_path, std::ios::binary);
  if (!in) {
    std::cerr << "run " << run.id << ": its workflow file " << run.workflow_path << " is gone\n";
    return std::nullopt;
  }
  return load_or_report(run.workflow_path);
}

// Says whether the file changed since the snapshot; returns the file's
// workflow when --use-current asks for it (nullopt + *failed on error).
std::optional<Workflow> choose_workflow(const RunInfo& run, bool use_current, bool* failed) {
  auto loaded = load_workflow(run.workflow_path);
  bool changed = !loaded || loaded.workflow->hash() != run.workflow_hash;
  if (!use_current) {
    if (changed)
      std::cerr << "note: " << run.workflow_path << " changed since run " << run.id
                << " started; continuing with the workflow it started with (--use-current to switch)\n";
    return std::nullopt;
  }
  auto wf = current_workflow(run);
  if (!wf) *failed = true;
  return wf;
}

// A report, as a run's progress is: on stderr.
void print_outcome(const RunInfo& run) {
  std::cerr << "run " << run.id << " already " << to_string(run.status) << " (" << run.workflow << "); nothing to do\n";
  for (auto& s : run.steps) std::cerr << "  " << to_string(s.status) << "  " << s.id << "\n";
}

}  // namespace

int rerun_existing(Session& session, const RunArgs& args, const Workflow& wf) {
  auto run = session.engine().run(args.run_id);
  if (!run) {
    std::cerr << run.message() << "\n";
    return kExitRunFailed;
  }
  if (run->workflow != wf.name()) {
    std::cerr << "--run-id " << args.run_id << " belongs to a run of workflow '" << run->workflow << "', not '"
              << wf.name() << "'\n";
    return kExitUsage;
  }
  if (run->status == RunStatus::succeeded) {
    print_outcome(*run);
    return kExitOk;
  }
  if (wf.hash() != run->workflow_hash)
    std::cerr << "note: " << run->workflow_path << " changed since run " << run->id
              << " started; continuing with the workflow it started with (hearth resume --use-current to switch)\n";
  ResumeOptions opts;
  opts.jobs = args.jobs;
  opts.model = model_spec_arg(args.model);
  auto resumed = session.engine().resume(args.run_id, opts, session.on_finished());
  if (!resumed) {
    std::cerr << resumed.message() << "\n";
    return kExitRunFailed;
  }
  return session.wait();
}

int command_resume(const Globals& g, const ResumeArgs& args) {
  std::string repo = resolve_repo(g);
  auto session = Session::open_for_runs(g, repo, args.events);
  if (!session) return kExitRunFailed;
  Engine& engine = session->engine();
  std::vector<std::string> ids = args.run_ids;
  if (args.all) {
    auto interrupted = engine.interrupted_runs();
    if (!interrupted) {
      std::cerr << interrupted.message() << "\n";
      return kExitRunFailed;
    }
    ids.insert(ids.end(), interrupted->begin(), interrupted->end());
    if (ids.empty()) {
      std::cerr << "no interrupted runs in " << session->state_path() << "\n";
      return kExitOk;
    }
  }
  if (ids.empty()) {
    std::cerr << "resume: name a run id (see `hearth runs`), or --all\n";
    return kExitUsage;
  }
  int refused = kExitOk;
  for (auto& id : ids) {
    auto run = engine.run(id);
    if (!run) {
      std::cerr << run.message() << "\n";
      refused = kExitUsage;
      continue;
    }
    bool failed = false;
    ResumeOptions opts;
    opts.from = args.from;
    opts.jobs = args.jobs;
    opts.model = model_spec_arg(args.model);
    opts.current = choose_workflow(*run, args.use_current, &failed);
    if (failed) {
      refused = kExitUsage;
      continue;
    }
    auto resumed = engine.resume(id, opts, session->on_finished());
    if (!resumed) {
      std::cerr << resumed.message() << "\n";
      // Another engine holding the run is not the user's mistake.
      refused = resumed.message().find("is being run by") != std::string::npos ? kExitRunFailed : kExitUsage;
    }
  }
  int rc = session->wait();
  return rc != kExitOk ? rc : refused;
}

}  // namespace hearth::cli
