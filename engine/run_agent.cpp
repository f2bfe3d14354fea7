// Skill and prompt steps: an attempt is an agent conversation (agent/harness.h)
// instead of one process. Its bash calls run in the run's sandbox with the
// step's isolation and granted commands (agent_bash.h); every checkpoint of
// the conversation is committed to the run store before the agent goes on;
// every turn, tool call and rejected result is an event. A resumed run
// continues the conversation of an interrupted attempt (resume.cpp).
#include <filesystem>

#include "engine/run.h"
#include "workflows/skill.h"

namespace hearth::engine {

namespace {

// Events and the terminal get the start of long texts; the checkpoint has
// them whole.
std::string clip(std::string s, size_t n = 2000) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return s.substr(0, cut) + "… [" + std::to_string(s.size() - cut) + " more bytes]";
}

nlohmann::json usage_json(const model::Usage& u) {
  return {{"input_tokens", u.input_tokens}, {"output_tokens", u.output_tokens},
          {"cache_read_input_tokens", u.cache_read_input_tokens},
          {"cache_creation_input_tokens", u.cache_creation_input_tokens}};
}

}  // namespace

std::string Run::redact(std::string text) const {
  if (!secrets_ || secrets_->empty()) return text;
  return secrets_->redact(text);
}

// What prepare_spec() adds for an agent step: its instructions, rendered
// now so a bad expression fails the step before anything runs.
Status Run::prepare_agent(StepState& st, const nlohmann::json& ctx) {
  const workflows::AgentStep& a = *st.def->agent;
  nlohmann::json with = nlohmann::json::object();
  for (auto& v : a.with) {
    auto text = v.value.parsed.render(ctx);
    if (!text) return Error{"'with' " + v.name + ": " + text.message()};
    with[v.name] = *text;
  }
  if (a.prompt) {
    auto text = a.prompt->parsed.render(ctx);
    if (!text) return Error{"'prompt': " + text.message()};
    st.instructions = *text;
    if (!with.empty()) st.instructions += "\n\nArguments of this step (JSON):\n```json\n" + with.dump(2) + "\n```\n";
    return {};
  }
  auto found = workflows::find_skill(opts_.repo, a.skill);
  if (!found.skill) {
    std::string why;
    for (auto& e : found.errors) why += (why.empty() ? "" : "; ") + e;
    return Error{"skill '" + a.skill + "': " + why};
  }
  const workflows::Skill& skill = *found.skill;
  // Where the agent finds the skill's files: in the workspace when the
  // workspace holds the folder (the repository, a checkout that has it) and
  // it is not under the hidden state directory (.hearth/skills with the
  // default state directory), else bound read-only into the sandbox at
  // /run/hearth-skills/<name> (reachable from bash).
  std::error_code ec;
  auto rel = std::filesystem::weakly_canonical(skill.dir, ec)
                 .lexically_relative(std::filesystem::weakly_canonical(opts_.repo, ec));
  std::string mount = isolated() ? sandbox::kWorkspaceInside : workspace_->path;
  std::string location;
  auto under = [&](const std::string& dir) { return rel.string() == dir || rel.string().rfind(dir + "/", 0) == 0; };
  auto hidden = hidden_state_dir();
  // .hearth is out of the file tools' reach too (start_agent): its skills are bound.
  bool in_hidden = (hidden && under(*hidden)) || under(".hearth");
  if (!rel.empty() && *rel.begin() != ".." && !in_hidden && std::filesystem::is_directory(workspace_->path / rel, ec)) {
    location = mount + "/" + rel.string();
  } else if (isolated()) {
    location = "/run/hearth-skills/" + a.skill;
    st.spec.isolation.binds.push_back({skill.dir, location, false});
    st.skill_dir = {skill.dir, location};
  } else {
    location = skill.dir;
    st.skill_dir = {skill.dir, location};
  }
  st.instructions = workflows::skill_instructions(skill, location, with.empty() ? "" : with.dump(2));
  return {};
}

Result<model::Client*> Run::client_for(const workflows::AgentStep& a) {
  std::string spec = opts_.model;
  bool from_workflow = false;
  if (spec.empty()) spec = a.model;
  if (spec.empty()) spec = wf_.model.name;
  from_workflow = !spec.empty() && opts_.model.empty();
  if (spec.empty())
    if (const char* env = std::getenv("HEARTH_MODEL")) spec = env;
  if (spec.empty())
    return Error{"no model: set [model] name in the workflow, 'model' on the step, HEARTH_MODEL, or --model"};
  // A cassette named by the workflow is read beneath the repository (a step
  // can write there: no symlink, nothing outside it).
  model::ClientOptions options;
  if (from_workflow && spec.rfind("replay:", 0) == 0 && spec.size() > 7 && spec[7] != '/') options.replay_root = opts_.repo;
  if (auto it = clients_.find(spec); it != clients_.end()) return it->second.get();
  options.base_url = wf_.model.base_url;
  if (spec.rfind("replay:", 0) != 0) options.record_path = opts_.record;
  if (secrets_)
    for (auto& v : secrets_->patterns()) options.secrets.push_back(v);
  auto client = model::make_client(engine_.loop_, spec, std::move(options));
  if (!client) return client.error();
  auto* raw = client->get();
  clients_[spec] = std::move(*client);
  return raw;
}

Status Run::start_agent(StepState& st) {
  const workflows::AgentStep& a = *st.def->agent;
  auto client = client_for(a);
  if (!client) return client.error();
  bool inside = isolated();
  std::string mount = inside ? sandbox::kWorkspaceInside : workspace_->path;
  StepState* sp = &st;  // steps_ never reallocates after begin()

  SandboxBashOptions bash;
  bash.sandbox = sandbox_;
  bash.base = st.spec;
  bash.host_root = workspace_->path;
  bash.mount = mount;
  // In the attempt's own directory, beside its output file.
  bash.cwd_dir_fd = st.attempt_dir_fd.get();
  bash.cwd_file_name = "cwd";
  bash.cwd_file_inside = (inside ? std::string("/run/hearth") : st.attempt_dir) + "/" + bash.cwd_file_name;
  bash.redact = [this](std::string s) { return redact(std::move(s)); };
  st.bash = std::make_unique<SandboxBashSession>(engine_.loop_, std::move(bash));

  agent::AgentSpec spec;
  spec.client = *client;
  spec.instructions = st.instructions;
  spec.workspace = workspace_->path;
  spec.workspace_options.mount = mount;
  if (auto rel = hidden_state_dir()) spec.workspace_options.hidden.push_back(*rel);
  // The file tools run in the engine, outside the sandbox that makes .hearth
  // read-only: they must not write the workflows the next run trusts, so
  // they do not reach .hearth at all (as with the default state directory).
  spec.workspace_options.hidden.push_back(".hearth");
  if (st.skill_dir) spec.read_only_dirs.push_back(*st.skill_dir);
  if (!a.tools.empty()) spec.tools = a.tools;
  spec.bash = st.bash.get();
  for (const auto& name : a.tools) {
    if (!wf_.tools.count(name)) continue;
    auto tool = engine_.host_tools_.find(name);
    if (tool == engine_.host_tools_.end())  // checked at start: unregistered since
      return Error{"[tools." + name + "] is implemented by the embedding program, which has no handler for it"};
    HostContext context{id(), st.rec.id, st.attempt.number, workspace_->path};
    agent::CustomTool custom{{name, tool->second.description, tool->second.input_schema}, {}};
    custom.call = [this, context, fn = tool->second.call](const nlohmann::json& args,
                                                          std::function<void(agent::ToolResult)> done) {
      // What the model reads is redacted like a bash call's output.
      fn(context, args, [this, alive = std::weak_ptr<bool>(alive_), done = std::move(done)](agent::ToolResult r) {
        auto a = alive.lock();
        if (!a || !*a) return;
        r.text = redact(std::move(r.text));
        done(std::move(r));
      });
    };
    spec.custom_tools.push_back(std::move(custom));
  }
  spec.result_schema = a.result_schema;
  spec.result_retries = a.result_retries;
  spec.max_turns = a.max_turns;
  spec.max_tokens = a.max_tokens;

  agent::HarnessCallbacks cb;
  cb.redact = [this](std::string s) { return redact(std::move(s)); };
  cb.checkpoint = [this, sp](const nlohmann::json& state) -> Status {
    // Only what the last checkpoint did not store is written (and redacted:
    // secret values never reach the store, not even inside a tool's output),
    // so a turn costs the same at turn 200 as at turn 2.
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
    Store& store = engine_.store_;
    return commit_now([&]() -> Status {
      auto stored = store.checkpoint_messages(id(), sp->rec.id, sp->attempt.number);
      if (!stored) return stored.error();
      size_t first = std::min(*stored, messages.size());
      nlohmann::json fresh = nlohmann::json::array();
      for (size_t i = first; i < messages.size(); ++i) fresh.push_back(hide(messages[i]));
      return store.append_checkpoint(id(), sp->rec.id, sp->attempt.number, turns, header, fresh, first);
    });
  };
  cb.on_turn_finished = [this, sp](const agent::TurnEvent& t) {
    nlohmann::json data = {{"attempt", sp->attempt.number}, {"turn", t.turn},
                           {"stop_reason", model::to_string(t.stop_reason)}, {"tool_calls", t.tool_calls},
                           {"usage", usage_json(t.usage)}, {"total", usage_json(t.total)},
                           {"http_attempts", t.attempts}, {"text", clip(t.text)}};
    commit_now([&] { return event(event_type::agent_turn, sp->rec.id, std::move(data)); });
    if (!t.text.empty()) on_output(*sp, "[turn " + std::to_string(t.turn) + "] " + clip(t.text, 4000) + "\n");
  };
  cb.on_tool_call = [this, sp](const agent::ToolCallEvent& c) {
    nlohmann::json data = {{"attempt", sp->attempt.number}, {"turn", c.turn}, {"id", c.id},
                           {"tool", c.name}, {"arguments", clip(c.arguments)}, {"is_error", c.is_error},
                           {"duration_ms", c.duration.count()}, {"output", clip(c.output)}};
    commit_now([&] { return event(event_type::agent_tool_call, sp->rec.id, std::move(data)); });
    on_output(*sp, "[" + c.name + "] " + clip(c.arguments, 300) + (c.is_error ? " (error)" : "") + "\n");
  };
  cb.on_result_rejected = [this, sp](const agent::RejectionEvent& r) {
    nlohmann::json data = {{"attempt", sp->attempt.number}, {"turn", r.turn}, {"rejection", r.rejection},
                           {"allowed", r.allowed}, {"errors", r.errors}};
    commit_now([&] { return event(event_type::agent_result_rejected, sp->rec.id, std::move(data)); });
    std::string text = "[result rejected " + std::to_string(r.rejection) + "/" + std::to_string(r.allowed + 1) + "]";
    for (auto& e : r.errors) text += " " + e + ";";
    on_output(*sp, text + "\n");
  };
  cb.on_done = [this, sp](const agent::AgentOutcome& outcome) {
    sp->agent_outcome = outcome;
    close_broker(*sp);
    close_proxies(*sp);
    if (sp->redactor) {
      std::string rest = sp->redactor->flush();
      sp->redactor.reset();
      if (!rest.empty()) on_output(*sp, rest);
    }
    stop_agent_timer(*sp);
    sp->exited = true;
    schedule();
  };
  auto h = agent::Harness::create(engine_.loop_, std::move(spec), std::move(cb));
  if (!h) return h.error();
  st.harness = std::move(*h);
  Status s = st.carried_state ? st.harness->resume(*st.carried_state) : st.harness->start();
  st.carried_state.reset();
  if (!s.ok()) {
    st.harness.reset();
    return s;
  }
  if (st.def->timeout) {
    st.agent_timer = new uv_timer_t;
    uv_timer_init(engine_.loop_, st.agent_timer);
    st.agent_timer->data = sp;
    uv_timer_start(st.agent_timer, [](uv_timer_t* t) noexcept {
      auto* s = static_cast<StepState*>(t->data);
      s->agent_timed_out = true;
      if (s->harness) s->harness->cancel();
    }, static_cast<uint64_t>(st.def->timeout->count()), 0);
  }
  return {};
}

void Run::stop_agent_timer(StepState& st) {
  if (!st.agent_timer) return;
  uv_close(reinterpret_cast<uv_handle_t*>(st.agent_timer), [](uv_handle_t* h) noexcept {
    delete reinterpret_cast<uv_timer_t*>(h);
  });
  st.agent_timer = nullptr;
}

// The attempt's outcome from the agent's: status, attempt reason, message.
void Run::agent_outcome_of(StepState& st, std::string& status, std::string& message) {
  AttemptRecord& a = st.attempt;
  const agent::AgentOutcome& o = *st.agent_outcome;
  if (o.ok()) {
    status = "succeeded";
    a.reason = "finished";
    nlohmann::json result = o.result;
    if (secrets_ && !secrets_->empty()) {
      auto redacted = nlohmann::json::parse(redact(result.dump()), nullptr, false);
      if (!redacted.is_discarded()) result = std::move(redacted);
    }
    st.rec.result = std::move(result);
    return;
  }
  status = "failed";
  if (o.failure == agent::Failure::cancelled && st.agent_timed_out) {
    a.reason = "timeout";
    message = "timed out after " + std::to_string(st.def->timeout->count()) + "ms (turn " + std::to_string(o.turns) + ")";
  } else if (o.failure == agent::Failure::cancelled) {
    a.reason = "cancelled";
    status = "cancelled";
    message = cancel_reason_.empty() ? o.reason : cancel_reason_;
  } else {
    a.reason = agent::to_string(o.failure);
    message = o.reason;
  }
}

}  // namespace hearth::engine
