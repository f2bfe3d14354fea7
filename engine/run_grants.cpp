// A run's granted commands: per attempt, the grants (grants.h), the broker
// on its socket, and the journal of every call in the run store.
#include <filesystem>

#include "engine/run.h"

namespace hearth::engine {

std::string Run::grants_root() const {
  return (std::filesystem::path(opts_.scratch_dir).parent_path() / "grants" / id()).string();
}

Status Run::prepare_grants_for(StepState& st, const nlohmann::json& ctx) {
  const std::string& shim = engine_.shim_path();
  if (shim.empty())
    return Error{"granted commands need the hearth-shim program, which was not found beside hearth "
                 "(set HEARTH_SHIM to its path)"};
  auto g = prepare_grants(wf_, *st.def, st.rec.attempts + 1, grants_root(), workspace_->path,
                          isolated() ? kShimInside : shim, ctx, secret_values_);
  if (!g) return g.error();
  for (auto& c : g->broker.commands) {
    if (!wf_.commands.at(c.name).host) continue;
    auto handler = engine_.host_commands_.find(c.name);
    if (handler == engine_.host_commands_.end())  // checked at start: unregistered since
      return Error{"[commands." + c.name + "] is implemented by the embedding program, which has no handler for it"};
    HostContext context{id(), st.rec.id, st.rec.attempts + 1, workspace_->path};
    c.host = [context, fn = handler->second](const commands::HostCall& call, std::function<void(commands::HostReply)> reply) {
      fn(context, call, std::move(reply));
    };
  }
  st.grants = std::move(*g);
  return {};
}

Status Run::start_broker(StepState& st) {
  if (!st.grants) return {};
  commands::BrokerOptions options = st.grants->broker;
  options.kill_grace = opts_.kill_grace;
  StepState* sp = &st;  // steps_ never reallocates after begin()
  std::weak_ptr<bool> alive = alive_;
  options.on_started = [this, sp, alive](const commands::Invocation& inv) -> Status {
    auto a = alive.lock();
    if (!a || !*a) return Error{"the run has ended"};
    return journal_call_started(*sp, inv);
  };
  options.on_finished = [this, sp, alive](const commands::Invocation& inv) {
    if (auto a = alive.lock(); a && *a) journal_call_finished(*sp, inv);
  };
  auto broker = commands::Broker::start(engine_.loop_, std::move(options));
  if (!broker) return Error{"cannot start the granted-command broker: " + broker.message()};
  st.broker = *broker;
  return {};
}

void Run::close_broker(StepState& st) {
  if (!st.broker) return;
  std::string dir = st.grants ? st.grants->dir : "", private_dir = st.grants ? st.grants->private_dir : "";
  st.broker->close([dir, private_dir] {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    if (!private_dir.empty()) std::filesystem::remove_all(private_dir, ec);  // npm's token file with it
  });
  st.broker = nullptr;
}

namespace {

CallRecord to_record(const StepState& st, const commands::Invocation& inv) {
  CallRecord c;
  c.step_id = st.rec.id;
  c.attempt = st.attempt.number;
  c.sequence = static_cast<int64_t>(inv.sequence);
  c.command = inv.command;
  c.argv = inv.argv;
  c.cwd = inv.cwd;
  c.started_at = inv.started_at_ms;
  c.allowed = inv.allowed;
  c.rule = inv.rule;
  return c;
}

nlohmann::json call_data(const commands::Invocation& inv) {
  return {{"sequence", inv.sequence}, {"command", inv.command}, {"argv", inv.argv},
          {"cwd", inv.cwd},           {"allowed", inv.allowed}, {"rule", inv.rule}};
}

}  // namespace

// Committed before the program starts: after a crash, a call with a start
// and no end is known to have possibly happened.
Status Run::journal_call_started(StepState& st, const commands::Invocation& inv) {
  Store& store = engine_.store_;
  CallRecord c = to_record(st, inv);
  if (!inv.allowed) {
    c.outcome = "refused";
    c.finished_at = inv.started_at_ms;
    c.exit_code = inv.exit_code;
  }
  return commit_now([&] {
    Status s = store.insert_call(id(), st.rec.id, c.attempt, c);
    return s.ok() ? event(event_type::command_started, st.rec.id, call_data(inv)) : s;
  });
}

void Run::journal_call_finished(StepState& st, const commands::Invocation& inv) {
  if (!inv.allowed) return;  // recorded whole when refused
  Store& store = engine_.store_;
  CallRecord c = to_record(st, inv);
  c.finished_at = now_ms();
  c.outcome = inv.timed_out ? "timed-out" : inv.shim_gone ? "abandoned" : "exited";
  c.exit_code = inv.exit_code;
  c.output_bytes = inv.output_bytes;
  c.output_sha256 = inv.output_sha256;
  c.output_tail = inv.output_tail;
  nlohmann::json data = call_data(inv);
  data["outcome"] = c.outcome;
  data["exit_code"] = inv.exit_code;
  data["output_bytes"] = inv.output_bytes;
  data["duration_ms"] = *c.finished_at - inv.started_at_ms;
  commit_now([&] {
    Status s = store.finish_call(id(), st.rec.id, c.attempt, c);
    return s.ok() ? event(event_type::command_finished, st.rec.id, std::move(data)) : s;
  });
}

}  // namespace hearth::engine
