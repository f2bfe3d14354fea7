// A run's granted commands: per attempt, the grants (grants.h), the broker
// on its socket, and the journal of every call in the run store.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
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

// The jail the attempt's granted programs run in (sandbox/jail.h): prepared
// once here, used by every call. Isolated runs only: a local run's steps are
// on the host already. A jailed program's HOME and TMPDIR are fresh
// directories of the attempt (the host's home is read-only there, or not
// even reachable as the run's unprivileged id).
Status Run::prepare_jail(StepState& st, commands::BrokerOptions& options) {
  if (!isolated()) return {};
  const std::string& priv = st.grants->private_dir;
  for (const char* sub : {"/home", "/tmp"})
    if (::mkdir((priv + sub).c_str(), 0700) != 0 && errno != EEXIST)
      return Error{"cannot create " + priv + sub + ": " + std::strerror(errno)};
  sandbox::JailSpec spec;
  spec.workspace = workspace_->path;
  spec.read_only = workspace_->read_only;
  // .hearth as the sandbox shows it: readable, never changed; a symlink
  // (a step's plant) is not followed.
  std::string dot_hearth = workspace_->path + "/.hearth";
  struct stat lst {};
  if (::lstat(dot_hearth.c_str(), &lst) == 0 && S_ISDIR(lst.st_mode)) spec.read_only.push_back(dot_hearth);
  if (auto rel = hidden_state_dir()) spec.hidden.push_back(workspace_->path + "/" + *rel);
  spec.writable.push_back(priv);
  auto jail = sandbox_->prepare_jail(spec);
  if (!jail) return jail.error();
  options.jail = *jail;
  for (auto& c : options.commands) {
    if (c.host) continue;
    std::erase_if(c.env, [](const std::string& e) { return e.rfind("HOME=", 0) == 0 || e.rfind("TMPDIR=", 0) == 0; });
    c.env.push_back("HOME=" + priv + "/home");
    c.env.push_back("TMPDIR=" + priv + "/tmp");
  }
  return {};
}

Status Run::start_broker(StepState& st) {
  if (!st.grants) return {};
  commands::BrokerOptions options = st.grants->broker;
  options.kill_grace = opts_.kill_grace;
  if (auto s = prepare_jail(st, options); !s.ok()) return s;
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
