// Taking over a recorded run: the lease, interrupted attempts, what
// re-runs (--from, failed runs), and the snapshot or --use-current.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <unordered_map>

#include "engine/checkout_records.h"
#include "engine/compiled_workflows.h"
#include "engine/leftovers.h"
#include "engine/run.h"
#include "workflows/loader.h"
#include "workflows/suggest.h"

namespace hearth::engine {

namespace {

// Which steps re-run with `from`: those and every step that needs them,
// directly or not (a walk over the edges reversed: O(steps + needs)).
std::vector<char> dependents_closure(const workflows::Workflow& wf,
                                     const std::unordered_map<std::string, size_t>& index,
                                     const std::vector<std::string>& from) {
  std::vector<char> out(wf.steps.size(), 0);
  if (from.empty()) return out;
  std::vector<std::vector<size_t>> dependents(wf.steps.size());
  for (size_t i = 0; i < wf.steps.size(); ++i)
    for (auto& n : wf.steps[i].needs) dependents[index.at(n)].push_back(i);
  std::vector<size_t> todo;
  for (auto& f : from) todo.push_back(index.at(f));
  while (!todo.empty()) {
    size_t i = todo.back();
    todo.pop_back();
    if (out[i]) continue;
    out[i] = 1;
    for (size_t d : dependents[i]) todo.push_back(d);
  }
  return out;
}

}  // namespace

Status Run::adopt(const std::vector<std::string>& from, bool replaced) {
  Store& store = engine_.store();
  if (auto s = choose_sandbox(); !s.ok()) return s;
  // Its table's version is checked outside the transaction.
  std::optional<CompiledWorkflows> snapshots;
  if (replaced) snapshots.emplace(store);
  if (wf_.sandbox.workspace == "checkout")
    if (auto s = prepare_checkout_records(store); !s.ok()) return s;
  if (auto s = store.begin(); !s.ok()) return s;
  // The first scheduling pass joins the takeover's transaction: one commit,
  // and one wait for it to be durable, before the first step starts.
  PassOutcome first;
  Status s = adopt_in_transaction(from, snapshots ? &*snapshots : nullptr);
  if (s.ok()) s = pass_in_transaction(first);
  return commit_and_go(s, std::move(first));
}

Status Run::adopt_in_transaction(const std::vector<std::string>& from, CompiledWorkflows* snapshots) {
  Store& store = engine_.store();
  auto run = store.load_run(id());
  if (!run) return run.error();
  // Taken first, in this transaction: a shared store keeps the row locked
  // until the commit, so a second engine taking over meanwhile waits, then
  // finds this one's lease.
  auto holder = store.take_lease(id(), lease_owner(), now_ms(), engine_.defaults().lease_timeout.count());
  if (!holder) return holder.error();
  if (!holder->empty())
    return Error{"run " + id() + " is being run by " + *holder + "; wait for it, or stop it first"};
  auto records = store.load_steps_to_resume(id());
  if (!records) return records.error();
  auto seq = store.last_event_seq(id());
  if (!seq) return seq.error();
  seq_ = *seq;
  payload_ = run->payload;
  if (auto s = render_env(); !s.ok()) return s;

  for (auto& f : from) {
    if (!index_.count(f)) {
      std::vector<std::string> ids;
      for (auto& st : wf_.steps) ids.push_back(st.id);
      return Error{"--from: no step '" + f + "' in workflow " + wf_.name + workflows::did_you_mean(f, ids)};
    }
  }
  std::vector<char> rerun = dependents_closure(wf_, index_, from);
  bool rerun_unsuccessful = run->status == RunStatus::failed || run->status == RunStatus::cancelled;
  auto keeps_outcome = [&](size_t i, const StepRecord& r) {
    if (rerun[i]) return false;
    if (r.status == StepStatus::succeeded) return true;
    return !rerun_unsuccessful && terminal(r.status);
  };

  std::optional<workflows::Workflow> snapshot;
  if (snapshots) {
    auto loaded = snapshots->load(*run);
    if (!loaded.ok()) return Error{"the run's workflow snapshot no longer loads: " + loaded.errors.front()};
    snapshot = std::move(*loaded.workflow);
  }
  std::vector<char> recorded(steps_.size(), 0);
  for (auto& r : *records) {
    auto found = index_.find(r.id);
    if (found == index_.end()) {
      return Error{"cannot resume run " + id() + " with the current workflow: step '" + r.id +
                   "' is recorded but no longer in " + wf_.path + "; resume without --use-current to keep the snapshot"};
    }
    StepState& st = steps_[found->second];
    if (snapshot && keeps_outcome(found->second, r)) {
      int j = snapshot->step_index(r.id);
      if (j < 0 || snapshot->steps[static_cast<size_t>(j)].definition_hash != st.def->definition_hash) {
        return Error{"cannot resume run " + id() + " with the current workflow: step '" + r.id + "' (" + to_string(r.status) +
                     ") is defined differently than when it ran; resume without --use-current to keep the snapshot, "
                     "or re-run it with --from " + r.id};
      }
    }
    st.rec = std::move(r);
    st.rec.position = static_cast<int>(found->second);
    recorded[found->second] = 1;
  }
  // Decide first, so that run.resumed (which lists the decisions) comes
  // before the events of the steps it affects.
  enum class Decision { keep, add, interrupt, reset };
  std::vector<Decision> decisions(steps_.size(), Decision::keep);
  std::vector<std::string> reset, interrupted;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const StepRecord& rec = steps_[i].rec;
    if (!recorded[i]) {
      decisions[i] = Decision::add;  // new in the current workflow
    } else if (rec.status == StepStatus::running) {
      decisions[i] = Decision::interrupt;
      interrupted.push_back(rec.id);
    } else if (!keeps_outcome(i, rec) && rec.status != StepStatus::pending && rec.status != StepStatus::waiting) {
      decisions[i] = Decision::reset;
      reset.push_back(rec.id);
    }
  }
  if (auto s = event(event_type::run_resumed, "",
                     {{"workflow_hash", wf_.hash}, {"from", from}, {"reset", reset}, {"interrupted", interrupted}});
      !s.ok())
    return s;
  for (size_t i = 0; i < steps_.size(); ++i) {
    StepState& st = steps_[i];
    Status s;
    switch (decisions[i]) {
      case Decision::keep: break;
      case Decision::add: s = store.insert_step(id(), st.rec); break;
      case Decision::interrupt: s = interrupt(st); break;
      case Decision::reset:
        st.rec = StepRecord{st.rec.id, st.rec.position, StepStatus::pending, st.rec.attempts, {}, {}, {}, nlohmann::json::object(), "", {}, 0, 0, {}};
        s = store.update_step(id(), st.rec);
        break;
    }
    if (!s.ok()) return s;
  }
  if (snapshots) {
    if (auto s = store.update_snapshot(id(), wf_.path, wf_.hash, wf_.text); !s.ok()) return s;
    if (auto s = snapshots->remember(wf_); !s.ok()) return s;
  }
  return store.update_run(id(), RunStatus::running, std::nullopt, "");
}

Status Run::interrupt(StepState& st) {
  Store& store = engine_.store();
  // Its processes may have outlived the engine: end them before anything
  // (this attempt's record, or a new attempt) can happen.
  int leftovers = kill_leftovers(id(), st.rec.id);
  // The attempt that was running: recorded as started, never finished.
  AttemptRecord last;
  if (!st.rec.attempt_list.empty()) last = st.rec.attempt_list.back();
  last.step_id = st.rec.id;
  last.number = st.rec.attempts;
  last.reason = "interrupted";
  last.finished_at = now_ms();
  st.rec.attempt_list.clear();
  if (auto s = store.finish_attempt(id(), last); !s.ok()) return s;
  st.rec.interruptions += 1;
  st.rec.finished_at = last.finished_at;
  // A skill or prompt step continues its conversation from the last
  // checkpoint (attempt_agent.cpp) instead of starting over.
  std::optional<nlohmann::json> conversation;
  if (st.def->agent) {
    auto saved = store.load_checkpoint(id(), st.rec.id, last.number);
    if (!saved) return Status(saved.error());
    conversation = std::move(*saved);
  }
  if (conversation) {
    if (auto result = agent::Harness::finished_result(*conversation)) {
      // The result was accepted and saved; only the step's outcome was not.
      st.rec.status = StepStatus::succeeded;
      st.rec.reason = "";
      st.rec.result = *result;
      st.rec.interruptions = 0;
      if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
      return event(event_type::step_succeeded, st.rec.id,
                   {{"attempt", last.number}, {"outputs", st.rec.outputs}, {"result", st.rec.result},
                    {"exit_code", nullptr}, {"duration_ms", *last.finished_at - last.started_at}});
    }
  }
  // A granted command that was running then may or may not have done what
  // it does (posted the comment, pushed the branch): never repeat it
  // silently. The step fails, naming the calls; `--from` re-runs it on purpose.
  auto unknown = store.settle_unfinished_calls(id(), st.rec.id, last.number, now_ms());
  if (!unknown) return Status(unknown.error());
  // An agent is told its tool call was interrupted and decides what to do;
  // a script would repeat the call blindly, so its step fails.
  for (auto& c : *unknown) {
    if (auto s = event(event_type::command_unknown, st.rec.id,
                       {{"sequence", c.sequence}, {"command", c.command}, {"argv", c.argv}, {"attempt", last.number}});
        !s.ok())
      return s;
  }
  if (!unknown->empty() && !conversation) {
    std::string calls;
    for (auto& c : *unknown) {
      std::string argv;
      for (auto& a : c.argv) argv += (argv.empty() ? "" : " ") + a;
      calls += (calls.empty() ? "'" : ", '") + argv + "'";
    }
    st.rec.status = StepStatus::failed;
    st.rec.reason = "interrupted while granted command " + calls +
                    " was running, outcome unknown: the step is not retried (re-run it with --from " +
                    st.rec.id + " once you have checked)";
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    return event(event_type::step_failed, st.rec.id,
                 {{"attempt", last.number}, {"reason", "interrupted"}, {"message", st.rec.reason}});
  }
  if (st.def->retry.on_interrupted && st.rec.interruptions < workflows::kMaxInterruptions) {
    st.carried_state = std::move(conversation);
    st.rec.status = StepStatus::pending;
    st.rec.reason = "";
    if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
    return event(event_type::step_interrupted, st.rec.id, {{"attempt", last.number}, {"killed_leftovers", leftovers}});
  }
  st.rec.status = StepStatus::failed;
  st.rec.reason = st.def->retry.on_interrupted
                      ? "interrupted " + std::to_string(st.rec.interruptions) + " times in a row: the engine stopped while it ran"
                      : "interrupted: the engine stopped while it ran, and its retry policy excludes \"interrupted\"";
  if (auto s = store.update_step(id(), st.rec); !s.ok()) return s;
  return event(event_type::step_failed, st.rec.id, {{"attempt", last.number}, {"reason", "interrupted"}, {"message", st.rec.reason}});
}

Result<std::string> Engine::resume(const std::string& run_id, ResumeOptions ropts, const workflows::Workflow* current,
                                   std::function<void(const RunResult&)> on_finished) {
  if (runs_.count(run_id)) return Error{"run " + run_id + " is already running in this engine"};
  auto run = store_.load_run(run_id);
  if (!run) return run.error();
  if (run->status == RunStatus::succeeded && ropts.from.empty())
    return Error{"run " + run_id + " already succeeded: nothing to resume (re-run steps with --from STEP)"};
  workflows::Workflow wf;
  if (current) {
    wf = *current;
  } else {
    auto loaded = CompiledWorkflows(store_).load(*run);
    if (!loaded.ok()) return Error{"the workflow snapshot of run " + run_id + " does not load: " + loaded.errors.front()};
    wf = std::move(*loaded.workflow);
  }
  if (auto s = check_host_parts(wf); !s.ok()) return s.error();
  StartOptions opts;
  opts.run_id = run_id;
  opts.repo = run->repo;
  opts.jobs = ropts.jobs ? ropts.jobs : defaults_.jobs;
  opts.model = ropts.model;
  auto* r = new Run(*this, std::move(wf), std::move(opts), std::move(on_finished));
  if (auto s = r->adopt(ropts.from, current != nullptr); !s.ok()) {
    r->discard();
    return s.error();
  }
  runs_[run_id] = r;
  return run_id;
}

}  // namespace hearth::engine
