// What a run keeps for its attempts between scheduling passes: the journal
// of granted-command calls, proxy requests and agent checkpoints (each
// committed as it happens), the model clients, the host's commands and tools.
#include <filesystem>

#include "engine/run.h"

namespace hearth::engine {

std::string Run::grants_root() const {
  return (std::filesystem::path(engine_.scratch_root()).parent_path() / "grants" / id()).string();
}

std::string Run::redact(std::string text) const {
  if (!secrets_ || secrets_->empty()) return text;
  return secrets_->redact(text);
}

Result<model::Client*> Run::client_for(const workflows::AgentStep& a) {
  std::string spec = opts_.model;
  bool from_workflow = false;
  if (spec.empty()) spec = a.model;
  if (spec.empty()) spec = wf_.model.name;
  from_workflow = !spec.empty() && opts_.model.empty();
  if (spec.empty())
    if (auto it = model_env_.find("HEARTH_MODEL"); it != model_env_.end()) spec = it->second;
  if (spec.empty())
    return Error{"no model: set [model] name in the workflow, 'model' on the step, HEARTH_MODEL, or --model"};
  // A cassette named by the workflow is read beneath the repository (a step
  // can write there: no symlink, nothing outside it).
  model::ClientOptions options;
  if (from_workflow && spec.rfind("replay:", 0) == 0 && spec.size() > 7 && spec[7] != '/') options.replay_root = opts_.repo;
  if (auto it = clients_.find(spec); it != clients_.end()) return it->second.get();
  options.base_url = wf_.model.base_url;
  options.getenv = [env = model_env_](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  if (spec.rfind("replay:", 0) != 0) options.record_path = opts_.record;
  if (secrets_)
    for (auto& v : secrets_->patterns()) options.secrets.push_back(v);
  auto client = model::make_client(engine_.loop(), spec, std::move(options));
  if (!client) return client.error();
  auto* raw = client->get();
  clients_[spec] = std::move(*client);
  return raw;
}

namespace {

CallRecord to_record(const std::string& step, int attempt, const commands::Invocation& inv) {
  CallRecord c;
  c.step_id = step;
  c.attempt = attempt;
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
Status Run::journal_call_started(const std::string& step, int attempt, const commands::Invocation& inv) {
  Store& store = engine_.store();
  CallRecord c = to_record(step, attempt, inv);
  if (!inv.allowed) {
    c.outcome = "refused";
    c.finished_at = inv.started_at_ms;
    c.exit_code = inv.exit_code;
  }
  return commit_now([&] {
    Status s = store.insert_call(id(), step, c.attempt, c);
    return s.ok() ? event(event_type::command_started, step, call_data(inv)) : s;
  });
}

void Run::when_durable(std::function<void(const Status&)> then) { engine_.store().when_durable(this, std::move(then)); }

void Run::journal_call_finished(const std::string& step, int attempt, const commands::Invocation& inv) {
  if (!inv.allowed) return;  // recorded whole when refused
  Store& store = engine_.store();
  CallRecord c = to_record(step, attempt, inv);
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
    Status s = store.finish_call(id(), step, c.attempt, c);
    return s.ok() ? event(event_type::command_finished, step, std::move(data)) : s;
  });
}

// Committed as it happens, like the command journal: the request has been
// answered already, so there is no intent to record first.
void Run::record_proxy_event(const std::string& step, int attempt, const proxy::ProxyEvent& e) {
  if (finishing_ || !fatal_.ok()) return;
  nlohmann::json data = {{"attempt", attempt},
                         {"proxy", e.proxy},
                         {"method", e.method},
                         {"path", e.path},
                         {"status", e.status},
                         {"decision", e.decision},
                         {"rule", e.rule},
                         {"request_bytes", e.request_bytes},
                         {"response_bytes", e.response_bytes},
                         {"duration_ms", static_cast<double>(e.duration.count()) / 1000.0}};
  commit_now([&] { return event(event_type::proxy_request, step, std::move(data)); });
}

// An agent's checkpoint, committed before the agent goes on. Only what the
// last checkpoint did not store is written (and redacted: secret values
// never reach the store, not even inside a tool's output), so a turn costs
// the same at turn 200 as at turn 2.
Status Run::save_checkpoint(const std::string& step, int attempt, const nlohmann::json& state) {
  auto hide = [this](nlohmann::json j) {
    if (!secrets_ || secrets_->empty()) return j;
    auto redacted = nlohmann::json::parse(redact(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
                                          nullptr, false);
    return redacted.is_discarded() ? j : redacted;
  };
  nlohmann::json header = nlohmann::json::object();
  for (auto it = state.begin(); it != state.end(); ++it)
    if (it.key() != "messages") header[it.key()] = it.value();
  header = hide(std::move(header));
  const nlohmann::json& messages = state.at("messages");
  int turns = state.value("turns", 0);
  Store& store = engine_.store();
  auto key = std::make_pair(step, attempt);
  return commit_now([&]() -> Status {
    auto known = stored_messages_.find(key);
    size_t stored = 0;
    if (known != stored_messages_.end()) {
      stored = known->second;
    } else {
      auto read = store.checkpoint_messages(id(), step, attempt);
      if (!read) return read.error();
      stored = *read;
    }
    size_t first = std::min(stored, messages.size());
    nlohmann::json fresh = nlohmann::json::array();
    for (size_t i = first; i < messages.size(); ++i) fresh.push_back(hide(messages[i]));
    if (auto s = store.append_checkpoint(id(), step, attempt, turns, header, fresh, first); !s.ok()) return s;
    stored_messages_[key] = messages.size();  // a failed commit stops the run: never read again then
    return Status{};
  });
}

}  // namespace hearth::engine
