// hearth::run_actions_step (hearth/actions.h), which `hearth ci` calls: the
// GitHub Actions step. Reads the event the job runs for, runs the workflows
// that start on it (or resumes them on a re-run of the job), and reports the
// Actions way: masks first, groups and annotations in the log, step outputs,
// a job summary. docs/github-actions.md is the user's side of this file.
#include <fnmatch.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ci/actions_commands.h"
#include "ci/actions_env.h"
#include "ci/actions_event.h"
#include "ci/actions_output.h"
#include "ci/actions_reporter.h"
#include "ci/actions_summary.h"
#include "api/actions_session.h"
#include "hearth/actions.h"
#include "engine/grants.h"
#include "engine/ids.h"
#include "engine/inputs.h"
#include "workflows/loader.h"
#include "workflows/suggest.h"
#include "util/json_limits.h"
#include "workflows/triggers.h"

namespace fs = std::filesystem;

namespace hearth {

namespace {

using namespace detail;  // the exit codes and CiSession (api/actions_session.h)

struct Candidate {
  std::string file;  // absolute
  std::string rel;   // relative to the repository, for annotations
  std::optional<workflows::Workflow> workflow;
  std::vector<std::string> errors;  // "file:line:col: message"
};

// Every workflow file of the repository, loaded without printing anything:
// the masks must go out before the first line that could hold a secret.
std::vector<Candidate> load_all(const std::string& repo) {
  std::vector<Candidate> out;
  for (auto& file : workflows::workflow_files(repo)) {
    Candidate c{file, fs::relative(file, repo).string(), std::nullopt, {}};
    auto loaded = workflows::load_workflow_file(file);
    if (!loaded.ok()) {
      c.errors = std::move(loaded.errors);
    } else if (auto s = engine::check_inputs_schema(loaded.workflow->inputs); !s.ok()) {
      c.errors.push_back(file + ":1:1: " + s.message());
    } else {
      c.workflow = std::move(loaded.workflow);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// Host values of every secret any loadable workflow uses (its commands' and
// its proxies' headers); unset and empty ones are skipped.
std::vector<std::string> secret_values(const std::vector<Candidate>& all, const ci::EnvLookup& env) {
  std::vector<std::string> values;
  for (auto& c : all) {
    if (!c.workflow) continue;
    for (auto& var : engine::secret_names(*c.workflow))
      if (auto v = env(var); v && !v->empty()) values.push_back(*v);
  }
  return values;
}

// "file:line:col: message" as an ::error annotation on that place.
void annotate_load_error(const Candidate& c, const std::string& error) {
  ci::Annotation a;
  a.title = "invalid workflow";
  a.file = c.rel;
  std::string message = error;
  if (error.rfind(c.file + ":", 0) == 0) {
    int line = 0, col = 0, used = 0;
    std::string rest = error.substr(c.file.size() + 1);
    if (std::sscanf(rest.c_str(), "%d:%d: %n", &line, &col, &used) == 2 && used > 0) {
      a.line = line;
      a.col = col;
      message = c.rel + ":" + rest;
    }
  }
  std::fputs(ci::format_annotation("error", a, message).c_str(), stdout);
}

Result<nlohmann::json> read_event(const std::string& spec, const ci::ActionsEnv& env) {
  std::string path = spec.empty() ? env.event_path : (spec[0] == '@' ? spec.substr(1) : "");
  std::string text = spec, where = "--payload";
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{path + ": cannot read the event payload: " + std::strerror(errno)};
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    where = path;
  } else if (spec.empty()) {
    return Error{"GITHUB_EVENT_PATH is not set: hearth ci reads the event payload from it (or pass --payload)"};
  }
  std::string why;
  auto j = parse_untrusted_json(text, &why);
  if (!j) return Error{where + ": invalid JSON: " + why};
  if (!j->is_object()) return Error{where + ": the payload must be a JSON object, not " + std::string(j->type_name())};
  return *j;
}

// An ::error / ::notice annotation of hearth ci itself, or on a workflow file.
std::string error_line(const std::string& message) {
  ci::Annotation a;
  a.title = "hearth ci";
  return ci::format_annotation("error", a, message);
}
std::string error_line(const std::string& file, const std::string& title, const std::string& message) {
  ci::Annotation a;
  a.title = title;
  a.file = file;
  return ci::format_annotation("error", a, message);
}
std::string notice_line(const std::string& message) {
  ci::Annotation a;
  a.title = "hearth ci";
  return ci::format_annotation("notice", a, message);
}

// A relative replay: cassette names a file from the current directory; the
// engine takes an absolute one (as `hearth run --model` makes it).
std::string absolute_model_spec(const std::string& model) {
  const std::string prefix = "replay:";
  if (model.rfind(prefix, 0) != 0 || model.size() == prefix.size() || model[prefix.size()] == '/') return model;
  return prefix + fs::absolute(model.substr(prefix.size())).lexically_normal().string();
}

bool is_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool selected_by(const std::string& pattern, const Candidate& c) {
  std::string stem = fs::path(c.file).stem().string();
  std::string name = c.workflow ? c.workflow->name : stem;
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0 || fnmatch(pattern.c_str(), stem.c_str(), 0) == 0;
}

// The status of several runs as one word.
std::string overall(const std::vector<ci::RunReport>& reports) {
  std::string status = "succeeded";
  for (auto& r : reports) {
    if (r.run.status == RunStatus::failed) return "failed";
    if (r.run.status != RunStatus::succeeded) status = to_string(r.run.status);
  }
  return status;
}

// What the step was asked to do: options, else the action's INPUT_* values.
struct Settings {
  std::string selection, payload, state_dir, model;
  bool resume = true;
};

Result<Settings> read_settings(const ActionsStepOptions& args, const ci::EnvLookup& env) {
  auto input = [&](const std::string& flag, const char* name) {
    return !flag.empty() ? flag : ci::get_input(env, name);
  };
  Settings s{input(args.workflow, "workflow"), input(args.payload, "payload"), input(args.state_dir, "state-path"),
             input(args.model, "model")};
  ci::EnvLookup with_flag = [&](const std::string& n) -> std::optional<std::string> {
    return n == "INPUT_RESUME" && !args.resume.empty() ? std::optional<std::string>(args.resume) : env(n);
  };
  auto resume = ci::get_boolean_input(with_flag, "resume");
  if (!resume) return resume.error();
  s.resume = resume->value_or(true);
  return s;
}

// The workflows to run. Prints the error and sets *unknown when a named
// workflow does not exist.
std::vector<Candidate*> select_workflows(std::vector<Candidate>& all, const std::string& selection,
                                         const std::string& event, const std::string& action, bool* unknown) {
  std::vector<Candidate*> chosen;
  for (auto& c : all) {
    bool pick = selection.empty() ? c.workflow && workflows::starts_on(*c.workflow, event, action)
                                  : selected_by(selection, c);
    if (pick && c.workflow) chosen.push_back(&c);
  }
  if (selection.empty() || is_glob(selection) || !chosen.empty() ||
      std::any_of(all.begin(), all.end(), [&](auto& c) { return selected_by(selection, c); }))
    return chosen;
  std::vector<std::string> names;
  for (auto& c : all) names.push_back(c.workflow ? c.workflow->name : fs::path(c.file).stem().string());
  std::cout << error_line("no workflow named '" + selection + "' in .hearth/workflows" +
                          workflows::did_you_mean(selection, names));
  *unknown = true;
  return chosen;
}

// How this attempt handled a selected workflow's run.
struct Launched {
  std::string run_id;
  bool resumed = false;  // continued an earlier attempt's run
  bool reused = false;   // found it succeeded; nothing ran
};

// One job's worth of runs on one engine.
struct CiJob {
  const ci::ActionsEnv& env;
  const Settings& settings;
  const ActionsStepOptions& args;
  const std::string& repo;
  const nlohmann::json& event;
  engine::Store& store;
  ci::ActionsReporter& reporter;
  CiSession& session;
  int rc = kExitOk;

  void fail(int code, const std::string& line) {
    std::cout << line;
    rc = std::max(rc, code);
  }

  // Starts the workflow's run, resumes it (a re-run of the job), or finds it done.
  std::optional<Launched> launch(const Candidate& c) {
    const workflows::Workflow& wf = *c.workflow;
    std::string id = ci::derive_run_id(env, wf.name, !settings.resume);
    auto exists = id.empty() ? Result<bool>(false) : store.run_exists(id);
    if (!exists) return fail(kExitRunFailed, error_line(exists.message())), std::nullopt;
    if (*exists) return continue_run(c, id);
    if (env.run_attempt > 1 && settings.resume)
      std::cout << notice_line("no state of an earlier attempt of " + wf.name +
                               " was found (is the state directory cached?); starting it over");
    auto payload = ci::run_payload(env.event_name, event, wf.inputs);
    if (!payload) return fail(kExitUsage, error_line(c.rel, "invalid payload", payload.message())), std::nullopt;
    StartOptions opts;
    opts.run_id = id.empty() ? engine::new_run_id() : id;
    opts.repo = repo;
    opts.jobs = args.jobs;
    opts.model = absolute_model_spec(settings.model);
    reporter.add_run(opts.run_id, wf, c.rel);
    auto started = session.engine().start(wf, std::move(*payload), std::move(opts), session.on_finished());
    if (!started) return fail(kExitUsage, error_line(c.rel, "run not started", wf.name + ": " + started.message())), std::nullopt;
    return Launched{*started};
  }

  std::optional<Launched> continue_run(const Candidate& c, const std::string& id) {
    auto run = store.load_run(id);
    if (run && run->status == RunStatus::succeeded) {
      std::cout << "run " << id << " (" << c.workflow->name << ") already succeeded in an earlier attempt; nothing to do\n";
      return Launched{id, false, true};
    }
    // Annotations point at the lines of the snapshot the run resumes with.
    auto snapshot = run ? workflows::load_workflow_text(run->workflow_text, run->workflow_path) : workflows::LoadResult{};
    reporter.add_run(id, snapshot.ok() ? *snapshot.workflow : *c.workflow, c.rel);
    ResumeOptions opts;
    opts.jobs = args.jobs;
    auto resumed = session.engine().resume(id, opts, nullptr, session.on_finished());
    if (!resumed) return fail(kExitRunFailed, error_line(resumed.message())), std::nullopt;
    return Launched{id, true, false};
  }
};

// Step outputs and the job summary, from what the store recorded. Returns
// the overall status.
std::string write_results(engine::Store& store, const std::vector<Launched>& launched, const ci::ActionsEnv& env,
                          const std::vector<std::string>& secrets) {
  std::vector<ci::RunReport> reports;
  for (auto& l : launched) {
    auto r = ci::load_report(store, l.run_id);
    if (!r) {
      std::cerr << "hearth ci: " << r.message() << "\n";
      continue;
    }
    r->resumed = l.resumed;
    r->reused = l.reused;
    reports.push_back(std::move(*r));
  }
  std::string ids;
  nlohmann::json result = nlohmann::json::object();
  for (auto& r : reports) {
    ids += (ids.empty() ? "" : " ") + r.run.id;
    result[r.run.workflow] = ci::run_result(r);
  }
  std::string result_text = ci::redact(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), secrets);
  std::string status = reports.empty() ? "failed" : overall(reports);
  if (!env.output_path.empty())
    if (auto s = ci::append_file_commands(env.output_path, {{"run-id", ids}, {"status", status}, {"result", result_text}});
        !s.ok())
      std::cerr << "hearth ci: " << s.message() << "\n";
  if (!env.summary_path.empty()) {
    std::ofstream out(env.summary_path, std::ios::binary | std::ios::app);
    out << ci::redact(ci::render_summary(reports), secrets);
    if (!out) std::cerr << "hearth ci: " << env.summary_path << ": cannot write the job summary\n";
  }
  return status;
}

void write_nothing_ran(const ci::ActionsEnv& env, const std::string& trigger) {
  if (!env.output_path.empty())
    if (auto s = ci::append_file_commands(env.output_path, {{"run-id", ""}, {"status", "skipped"}, {"result", "{}"}});
        !s.ok())
      std::cerr << "hearth ci: " << s.message() << "\n";
  if (!env.summary_path.empty())
    std::ofstream(env.summary_path, std::ios::app) << "Hearth: no workflow starts on `" << trigger << "`.\n\n";
}

}  // namespace

int run_actions_step(const ActionsStepOptions& args) {
  ci::EnvLookup env_lookup = ci::process_env();
  const std::string& repo = args.repo;
  // 1. Load quietly, then mask every secret before anything else is printed.
  std::vector<Candidate> all = load_all(repo);
  std::vector<std::string> secrets = secret_values(all, env_lookup);
  std::fputs(ci::mask_commands(secrets).c_str(), stdout);
  std::fflush(stdout);

  auto env = ci::ActionsEnv::read(env_lookup);
  auto settings = read_settings(args, env_lookup);
  for (const Status& s : {env.status(), settings.status()}) {
    if (s.ok()) continue;
    std::cerr << "hearth ci: " << s.message() << "\n";
    return kExitUsage;
  }
  if (!settings->model.empty()) setenv("HEARTH_MODEL", settings->model.c_str(), 1);
  if (env->event_name.empty()) {
    std::cerr << "hearth ci: GITHUB_EVENT_NAME is not set: hearth ci runs as a GitHub Actions step "
                 "(use `hearth run` elsewhere)\n";
    return kExitUsage;
  }
  auto event = read_event(settings->payload, *env);
  if (!event) {
    std::cout << error_line(event.message());
    return kExitUsage;
  }
  std::string action = ci::event_action(*event);
  std::string trigger = env->event_name + (action.empty() ? "" : "." + action);

  // 2. Broken workflow files fail the step, whichever event this is.
  int rc = kExitOk;
  for (auto& c : all) {
    for (auto& e : c.errors) annotate_load_error(c, e);
    if (!c.errors.empty()) rc = kExitUsage;
  }

  // 3. Select: by name or glob when asked (whatever their [on]); else by [on].
  const std::string& selection = settings->selection;
  bool unknown = false;
  std::vector<Candidate*> chosen = select_workflows(all, selection, env->event_name, action, &unknown);
  if (unknown) return kExitUsage;
  if (chosen.empty()) {
    std::cout << "hearth: no workflow in .hearth/workflows starts on " << trigger
              << (selection.empty() ? "" : " and matches '" + selection + "'") << "; nothing to run\n";
    write_nothing_ran(*env, trigger);
    return rc;
  }

  // 4. Run them all on one engine.
  std::string state_path = args.state_path;
  if (!settings->state_dir.empty()) state_path = fs::absolute(fs::path(settings->state_dir) / "state.db").string();
  auto store = engine::Store::open(state_path);
  if (!store) {
    std::cout << error_line(store.message());
    return kExitRunFailed;
  }
  ci::ActionsReporter reporter(stdout);
  std::vector<Launched> launched;
  {
    CiSession session(**store, &reporter);
    CiJob job{*env, *settings, args, repo, *event, **store, reporter, session};
    for (Candidate* c : chosen)
      if (auto l = job.launch(*c)) launched.push_back(std::move(*l));
    int runs_rc = session.wait();
    reporter.flush();
    rc = std::max(rc, job.rc);
    if (runs_rc == kExitCancelled) rc = kExitCancelled;
    else if (runs_rc != kExitOk && rc != kExitCancelled) rc = std::max(rc, runs_rc);
  }

  // 5. Outputs and the job summary.
  std::string status = write_results(**store, launched, *env, secrets);
  if (rc == kExitOk && status != "succeeded") rc = status == "cancelled" ? kExitCancelled : kExitRunFailed;
  return rc;
}

}  // namespace hearth
