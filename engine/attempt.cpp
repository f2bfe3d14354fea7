// The life of one attempt, top to bottom: prepare, start, run, end, outcome,
// close. Agent steps' parts are in attempt_agent.cpp.
#include "engine/attempt.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/output_file.h"
#include "engine/remove_later.h"
#include "engine/run.h"
#include "engine/working_directory.h"

namespace hearth::engine {

Attempt::Attempt(Run& run, const workflows::Step& def, int number) : run_(run), def_(def), number_(number) {}

int64_t Attempt::now_ms() const { return run_.now_ms(); }

namespace {

// A host-implemented command's handler as the broker calls it, after the
// call passed the command's policy and path checks. A handler that throws
// fails its call (a reply it made first stands); the engine goes on.
auto host_call(CommandHandler handler, CommandCall base) {
  return [handler = std::move(handler), base = std::move(base)](const commands::HostCall& call,
                                                                std::function<void(commands::HostReply)> reply) {
    CommandCall c = base;
    c.argv = call.argv;
    c.cwd = call.cwd;
    c.input = call.input;
    auto answer = [reply](CommandReply r) { reply({r.exit_code, std::move(r.output), std::move(r.error)}); };
    try {
      handler(c, answer);
    } catch (const std::exception& e) {
      answer({1, "", "hearth: the host's handler of '" + c.argv.at(0) + "' failed: " + e.what() + "\n"});
    } catch (...) {
      answer({1, "", "hearth: the host's handler of '" + c.argv.at(0) + "' failed\n"});
    }
  };
}

}  // namespace

// ---- 1. prepare ----

Status Attempt::prepare(const std::map<std::string, std::string>& base_env, nlohmann::json& ctx) {
  auto where = [&](const std::string& what) { return "step '" + def_.id + "': " + what + ": "; };
  std::map<std::string, std::string> env = base_env;
  for (auto& v : def_.env) {
    auto text = v.value.parsed.render(ctx);
    if (!text) return Error{where("env '" + v.name + "'") + text.message()};
    env[v.name] = *text;
    ctx["env"][v.name] = *text;
  }
  for (auto& [var, expression] : def_.run_slots) {
    auto value = expression.evaluate(ctx);
    if (!value) return Error{where("run") + "${{ " + expression.text() + " }}: " + value.message()};
    env[var] = workflows::expr::to_text(*value);
  }
  if (auto s = run_.ensure_workspace(); !s.ok()) return Error{where("workspace") + s.message()};
  const sandbox::Workspace& ws = run_.workspace();
  std::filesystem::path cwd = ws.path;
  if (def_.working_directory) {
    auto dir = def_.working_directory->parsed.render(ctx);
    if (!dir) return Error{where("working-directory") + dir.message()};
    auto inside = resolve_working_directory(ws.path, *dir);
    if (!inside) return Error{where("working-directory") + inside.message()};
    cwd = *inside;
  }
  // The attempt's own directory, made fresh when it starts.
  dir_ = run_.scratch_dir() + "/" + def_.id + "." + std::to_string(number_);
  output_inside_ = dir_ + "/" + kOutputFileName;
  env["HEARTH_RUN_ID"] = run_.id();
  env["HEARTH_STEP_ID"] = def_.id;
  env["HEARTH_WORKSPACE"] = ws.path;
  spec_ = {};
  if (run_.isolated())
    if (auto s = prepare_isolation(env); !s.ok()) return Error{where("workspace") + s.message()};
  env["HEARTH_OUTPUT"] = output_inside_;
  if (!def_.commands.empty())
    if (auto s = prepare_grants(ctx, env); !s.ok()) return Error{where("commands") + s.message()};
  if (auto s = prepare_proxies(); !s.ok()) return Error{where("proxies") + s.message()};
  if (def_.agent) {
    if (auto s = prepare_agent(ctx); !s.ok()) return Error{where(def_.agent->prompt ? "prompt" : "skill") + s.message()};
  } else {
    spec_.argv = {"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", def_.run};
  }
  for (auto& [k, v] : env) spec_.env.push_back(k + "=" + v);
  spec_.cwd = cwd.string();
  spec_.timeout = def_.timeout;
  spec_.kill_grace = run_.kill_grace();
  spec_.clock = &run_.clock();
  return {};
}

// What the namespace sandbox shows the step.
Status Attempt::prepare_isolation(std::map<std::string, std::string>& env) {
  const sandbox::Workspace& ws = run_.workspace();
  const auto& box = run_.workflow().sandbox;
  auto& iso = spec_.isolation;
  iso.workspace = ws.path;
  // A checkout reads its objects from the host repository's database.
  for (auto& p : ws.read_only) iso.binds.push_back({p, p, false});
  iso.network = box.network == "host" ? sandbox::Network::host : sandbox::Network::none;
  iso.memory_bytes = box.memory_bytes;
  iso.pids = box.pids;
  iso.cpus = box.cpus;
  // Only this attempt's own directory (its output file) at /run/hearth:
  // never another step's, nor an earlier attempt's.
  iso.binds.push_back({dir_, "/run/hearth", true});
  // The engine's state directory (the database, other runs' workspaces and
  // grant sockets) is hidden when it lives inside the workspace, as the
  // default <repo>/.hearth does with workspace = "repo".
  if (auto rel = run_.hidden_state_dir()) iso.hidden.push_back(*rel);
  // The engine trusts .hearth/ (workflows, skills) on the next run: a step
  // may read it but never change it, wherever the state lives.
  if (auto s = keep_dot_hearth(ws.path); !s.ok()) return s;
  iso.read_only.push_back(".hearth");
  output_inside_ = std::string("/run/hearth/") + kOutputFileName;
  env["HEARTH_WORKSPACE"] = sandbox::kWorkspaceInside;
  return {};
}

// Granted commands: the grants (grants.h), a host-implemented command's
// handler, the shim on PATH and the broker's socket.
Status Attempt::prepare_grants(const nlohmann::json& ctx, std::map<std::string, std::string>& env) {
  const std::string& shim = run_.shim_path();
  if (shim.empty())
    return Error{"granted commands need the hearth-shim program, which was not found beside hearth "
                 "(set HEARTH_SHIM to its path)"};
  const workflows::Workflow& wf = run_.workflow();
  const sandbox::Workspace& ws = run_.workspace();
  bool inside = run_.isolated();
  auto g = engine::prepare_grants(wf, def_, number_, run_.grants_root(), ws.path, inside ? kShimInside : shim, ctx,
                                  run_.secret_values());
  if (!g) return g.error();
  for (auto& c : g->broker.commands) {
    // A push reads no object store besides the workspace's but those the engine lent it.
    if (c.git) c.push.lent_objects = ws.read_only;
    if (!wf.commands.at(c.name).host) continue;
    const CommandHandler* handler = run_.host_command(c.name);
    if (!handler)  // checked at start: unregistered since
      return Error{"[commands." + c.name + "] is implemented by the embedding program, which has no handler for it"};
    c.host = host_call(*handler, CommandCall{run_.id(), def_.id, number_, {}, "", ws.path, ""});
  }
  grants_ = std::move(*g);
  env["PATH"] = (inside ? std::string(kGrantsInside) + "/bin" : grants_->bin_dir) + ":" + env["PATH"];
  env["HEARTH_COMMAND_SOCKET"] = inside ? std::string(kGrantsInside) + "/commands.sock" : grants_->socket;
  if (inside) {
    spec_.isolation.binds.push_back({grants_->dir, kGrantsInside, true});
    spec_.isolation.binds.push_back({shim, kShimInside, false});
  }
  return {};
}

Status Attempt::prepare_proxies() {
  const workflows::Workflow& wf = run_.workflow();
  if (!run_.isolated() || !uses_proxies(wf, def_)) return {};
  auto p = engine::prepare_proxies(wf, def_, run_.secret_values());
  if (!p) return p.error();
  proxies_ = std::move(*p);
  spec_.isolation.network = sandbox::Network::proxies;
  return {};
}

// ---- 3. start ----

void Attempt::ready() {
  if (ready_) return;
  const auto& secrets = run_.secrets();
  if (secrets && !secrets->empty()) redactor_ = std::make_unique<commands::StreamRedactor>(secrets);
  Status s = make_dir();
  if (s.ok()) s = start_broker();
  if (s.ok()) s = start_proxies();
  if (s.ok() && def_.agent) s = make_agent();
  ready_ = std::move(s);
}

void Attempt::start(std::optional<nlohmann::json> carried) {
  ready();
  started_ = true;
  Status s = *ready_;
  if (s.ok()) s = def_.agent ? start_agent(std::move(carried)) : start_process();
  if (!s.ok()) return fail_to_start(s);
  if (process_ && run_.cancelling()) process_->kill();
}

// Nothing of the attempt runs: what started is closed, the outcome is the
// spawn error.
void Attempt::fail_to_start(const Status& why) {
  close_broker();
  close_proxies();
  redactor_.reset();
  harness_.reset();  // made ready, never started; before the session it borrows
  bash_.reset();
  spawn_error_ = why.message();
  ended_ = true;
  run_.attempt_ended();
}

Status Attempt::make_dir() {
  if (auto s = run_.ensure_scratch_dir(); !s.ok()) return s;
  // Whatever an earlier engine left under this name (a crash) goes first.
  if (auto s = remove_tree(dir_); !s.ok()) return s;
  auto dir = make_fresh_dir(dir_, 0700);
  if (!dir) return dir.error();
  dir_fd_ = std::move(*dir);
  return {};
}

// The jail the attempt's granted programs run in (sandbox/jail.h): prepared
// once here, used by every call. Isolated runs only: a local run's steps are
// on the host already. A jailed program's HOME and TMPDIR are fresh
// directories of the attempt (the host's home is read-only there, or not
// even reachable as the run's unprivileged id).
Status Attempt::prepare_jail(commands::BrokerOptions& options) {
  if (!run_.isolated()) return {};
  const sandbox::Workspace& ws = run_.workspace();
  const std::string& priv = grants_->private_dir;
  for (const char* sub : {"/home", "/tmp"})
    if (::mkdir((priv + sub).c_str(), 0700) != 0 && errno != EEXIST)
      return Error{"cannot create " + priv + sub + ": " + std::strerror(errno)};
  sandbox::JailSpec spec;
  spec.workspace = ws.path;
  spec.read_only = ws.read_only;
  // .hearth as the sandbox shows it: readable, never changed; a symlink
  // (a step's plant) is not followed.
  std::string dot_hearth = ws.path + "/.hearth";
  struct stat lst {};
  if (::lstat(dot_hearth.c_str(), &lst) == 0 && S_ISDIR(lst.st_mode)) spec.read_only.push_back(dot_hearth);
  if (auto rel = run_.hidden_state_dir()) spec.hidden.push_back(ws.path + "/" + *rel);
  spec.writable.push_back(priv);
  auto jail = run_.sandbox().prepare_jail(spec);
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

// The broker journals every call in the run store (Run::journal_call_*).
// Its hooks hold the run's liveness, not the attempt: a call may finish
// after the attempt's outcome is recorded.
Status Attempt::start_broker() {
  if (!grants_) return {};
  commands::BrokerOptions options = grants_->broker;
  options.kill_grace = run_.kill_grace();
  if (auto s = prepare_jail(options); !s.ok()) return s;
  Run* run = &run_;
  std::weak_ptr<bool> alive = run_.alive();
  std::string step = def_.id;
  int number = number_;
  options.on_started = [run, alive, step, number](const commands::Invocation& inv) -> Status {
    auto a = alive.lock();
    if (!a || !*a) return Error{"the run has ended"};
    return run->journal_call_started(step, number, inv);
  };
  // The journal entry is durable before the program starts: after a power
  // loss, a call that may have happened is never missing from it.
  options.when_recorded = [run, alive](std::function<void(const Status&)> then) {
    auto a = alive.lock();
    if (!a || !*a) return then(Error{"the run has ended"});
    run->when_durable(std::move(then));
  };
  options.on_finished = [run, alive, step, number](const commands::Invocation& inv) {
    if (auto a = alive.lock(); a && *a) run->journal_call_finished(step, number, inv);
  };
  auto broker = commands::Broker::start(run_.loop(), std::move(options));
  if (!broker) return Error{"cannot start the granted-command broker: " + broker.message()};
  broker_ = *broker;
  return {};
}

// One proxy.request event per request (Run::record_proxy_event), held like
// the broker's hooks.
Status Attempt::start_proxies() {
  if (!proxies_) return {};
  std::string preferred = run_.grants_root() + "/" + def_.id + "." + std::to_string(number_) + ".proxies";
  auto dir = make_proxy_socket_dir(preferred, *proxies_);
  if (!dir) return dir.error();
  proxies_->socket_dir = *dir;
  proxy::ProxyServerOptions o;
  o.socket_dir = *dir;
  o.proxies = proxies_->proxies;
  o.egress = proxies_->egress;
  o.secrets = run_.secrets();
  o.ca_file = proxies_->ca_file;
  Run* run = &run_;
  std::weak_ptr<bool> alive = run_.alive();
  std::string step = def_.id;
  int number = number_;
  o.on_event = [run, alive, step, number](const proxy::ProxyEvent& e) {
    if (auto a = alive.lock(); a && *a) run->record_proxy_event(step, number, e);
  };
  auto server = proxy::ProxyServer::start(run_.loop(), std::move(o));
  if (!server) {
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
    return Error{"cannot start the step's proxies: " + server.message()};
  }
  proxy_server_ = *server;
  spec_.isolation.forwards = proxy_server_->forwards();
  override_env(spec_.env, proxy_server_->environment());
  return {};
}

Status Attempt::start_process() {
  sandbox::ExecCallbacks cb;
  cb.on_output = [this](std::string_view chunk) { on_output(chunk); };
  cb.on_exit = [this](const sandbox::ExitInfo& info) {
    process_ = nullptr;
    exit_ = info;
    on_ended();
  };
  auto p = run_.sandbox().spawn(run_.loop(), spec_, std::move(cb));
  if (!p) return p.error();
  process_ = *p;
  return {};
}

// ---- while it runs ----

void Attempt::cancel() {
  if (!started_) return;
  if (process_) process_->kill();
  if (harness_) harness_->cancel();
}

void Attempt::on_output(std::string_view raw) {
  std::string redacted;
  std::string_view chunk = raw;
  if (redactor_) {
    redacted = redactor_->push(raw);
    chunk = redacted;
    if (chunk.empty()) return;
  }
  record.output_bytes += static_cast<int64_t>(chunk.size());
  record.output_tail.append(chunk);
  if (record.output_tail.size() > 2 * kTailBytes) record.output_tail.erase(0, record.output_tail.size() - kTailBytes);
  run_.output(def_.id, chunk);
}

// ---- 4. it ended ----

void Attempt::on_ended() {
  stop_services();
  if (redactor_) {
    std::string rest = redactor_->flush();
    redactor_.reset();
    if (!rest.empty()) on_output(rest);
  }
  ended_ = true;
  run_.attempt_ended();
}

void Attempt::stop_services() {
  close_broker();
  close_proxies();
  stop_agent_timer();
}

// ---- 5. outcome ----

AttemptOutcome Attempt::outcome() {
  ended_ = false;
  AttemptRecord& a = record;
  if (a.output_tail.size() > kTailBytes) a.output_tail.erase(0, a.output_tail.size() - kTailBytes);
  a.finished_at = now_ms();
  AttemptOutcome o;
  if (!spawn_error_.empty()) {
    a.reason = "spawn-error";
    o.message = spawn_error_;
  } else if (agent_outcome_) {
    agent_outcome(o);
  } else {
    script_outcome(o);
  }
  return o;
}

void Attempt::script_outcome(AttemptOutcome& o) {
  AttemptRecord& a = record;
  a.exit_code = exit_.exit_status;
  a.signal = exit_.term_signal;
  if (exit_.killed) {
    a.reason = "cancelled";
    o.status = StepStatus::cancelled;
    o.message = run_.cancel_reason();
    return;
  }
  if (!exit_.failure.empty()) {  // the sandbox could not be set up around it
    a.reason = "spawn-error";
    o.message = exit_.failure;
    return;
  }
  if (exit_.timed_out) {
    a.reason = "timeout";
    o.message = "timed out after " + std::to_string(def_.timeout->count()) + "ms";
    return;
  }
  a.reason = "exited";
  auto outputs = read_outputs();
  if (!outputs) {
    a.reason = "output-error";
    o.message = outputs.message();
    return;
  }
  const auto& secrets = run_.secrets();
  if (secrets && !secrets->empty())
    for (auto& [k, v] : outputs->items())
      if (v.is_string()) v = secrets->redact(v.get<std::string>());
  o.outputs = std::move(*outputs);
  if (exit_.exit_status == 0) o.status = StepStatus::succeeded;
  else o.message = "exited with code " + std::to_string(exit_.exit_status);
}

Result<nlohmann::json> Attempt::read_outputs() {
  // Written by the step, so hostile: read only as a regular file of its own
  // directory, never through a symlink, a FIFO or a hard link, and bounded.
  std::string where = "step '" + def_.id + "': $HEARTH_OUTPUT (" + output_inside_ + ")";
  if (!dir_fd_) return Error{where + ": the attempt's directory is not open"};
  auto text = read_regular_beneath(dir_fd_.get(), kOutputFileName, kMaxOutputFileBytes);
  if (!text) return Error{where + " is refused: " + text.message()};
  if (!*text) return nlohmann::json::object();  // the step wrote none (or removed it): no outputs
  auto parsed = parse_output_file(**text);
  if (!parsed) return Error{where + ": " + parsed.message()};
  nlohmann::json out = nlohmann::json::object();
  for (auto& [k, v] : *parsed) out[k] = v;
  return out;
}

// ---- 6. close ----

void Attempt::close() {
  stop_services();
  redactor_.reset();
  harness_.reset();
  bash_.reset();
  // After the agent's session, which borrows the descriptor; never following
  // what the step left there (leftovers go with the run's scratch).
  // Only a directory this attempt made: an attempt that never started
  // shares its number (and name) with the next one, whose directory a
  // removal still queued would take.
  bool made = static_cast<bool>(dir_fd_);
  dir_fd_.reset();
  if (made) remove_later(run_.loop(), {dir_});
  dir_.clear();
}

void Attempt::close_broker() {
  if (!broker_) return;
  std::string dir = grants_ ? grants_->dir : "", private_dir = grants_ ? grants_->private_dir : "";
  std::exchange(broker_, nullptr)->close([dir, private_dir] {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    if (!private_dir.empty()) std::filesystem::remove_all(private_dir, ec);  // npm's token file with it
  });
}

void Attempt::close_proxies() {
  if (!proxy_server_) return;
  std::string dir = proxies_ ? proxies_->socket_dir : "";
  std::exchange(proxy_server_, nullptr)->close([dir] {  // close() may emit events
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  });
}

void Attempt::stop_agent_timer() { agent_timer_.reset(); }

}  // namespace hearth::engine
