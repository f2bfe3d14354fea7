// Skill and prompt steps: the attempt is an agent conversation
// (agent/harness.h) instead of one process. Its bash calls run in the run's
// sandbox with the step's isolation and granted commands (agent_bash.h);
// every checkpoint of the conversation is committed to the run store before
// the agent goes on; every turn, tool call and rejected result is an event.
// A resumed run continues the conversation of an interrupted attempt.
#include <filesystem>

#include "engine/attempt.h"
#include "engine/events.h"
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

// A host-implemented tool's handler as the agent calls it. What the model
// reads is redacted like a bash call's output; a reply after the run ended
// is dropped; a handler that throws fails its call.
auto host_tool_call(Run* run, ToolHandler handler, ToolCall base) {
  return [run, alive = run->alive(), handler = std::move(handler), base = std::move(base)](
             const nlohmann::json& args, std::function<void(agent::ToolResult)> done) {
    ToolCall c = base;
    c.arguments_json = args.dump();
    auto answer = [run, alive, done = std::move(done)](ToolReply r) {
      auto a = alive.lock();
      if (!a || !*a) return;
      done({run->redact(std::move(r.text)), r.is_error});
    };
    try {
      handler(c, answer);
    } catch (const std::exception& e) {
      answer({"the tool " + c.tool + " failed: " + e.what(), true});
    } catch (...) {
      answer({"the tool " + c.tool + " failed", true});
    }
  };
}

}  // namespace

// What prepare() adds for an agent step: its instructions, rendered now so
// a bad expression fails the step before anything runs.
Status Attempt::prepare_agent(const nlohmann::json& ctx) {
  const workflows::AgentStep& a = *def_.agent;
  nlohmann::json with = nlohmann::json::object();
  for (auto& v : a.with) {
    auto text = v.value.parsed.render(ctx);
    if (!text) return Error{"'with' " + v.name + ": " + text.message()};
    with[v.name] = *text;
  }
  if (a.prompt) {
    auto text = a.prompt->parsed.render(ctx);
    if (!text) return Error{"'prompt': " + text.message()};
    instructions_ = *text;
    if (!with.empty()) instructions_ += "\n\nArguments of this step (JSON):\n```json\n" + with.dump(2) + "\n```\n";
    return {};
  }
  const std::string& repo = run_.options().repo;
  auto found = workflows::find_skill(repo, a.skill);
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
  const sandbox::Workspace& ws = run_.workspace();
  std::error_code ec;
  auto rel = std::filesystem::weakly_canonical(skill.dir, ec)
                 .lexically_relative(std::filesystem::weakly_canonical(repo, ec));
  std::string mount = run_.isolated() ? sandbox::kWorkspaceInside : ws.path;
  std::string location;
  auto under = [&](const std::string& dir) { return rel.string() == dir || rel.string().rfind(dir + "/", 0) == 0; };
  auto hidden = run_.hidden_state_dir();
  // .hearth is out of the file tools' reach too (start_agent): its skills are bound.
  bool in_hidden = (hidden && under(*hidden)) || under(".hearth");
  if (!rel.empty() && *rel.begin() != ".." && !in_hidden && std::filesystem::is_directory(ws.path / rel, ec)) {
    location = mount + "/" + rel.string();
  } else if (run_.isolated()) {
    location = "/run/hearth-skills/" + a.skill;
    spec_.isolation.binds.push_back({skill.dir, location, false});
    skill_dir_ = {skill.dir, location};
  } else {
    location = skill.dir;
    skill_dir_ = {skill.dir, location};
  }
  instructions_ = workflows::skill_instructions(skill, location, with.empty() ? "" : with.dump(2));
  return {};
}

Status Attempt::make_agent() {
  const workflows::AgentStep& a = *def_.agent;
  auto client = run_.client_for(a);
  if (!client) return client.error();
  const sandbox::Workspace& ws = run_.workspace();
  bool inside = run_.isolated();
  std::string mount = inside ? sandbox::kWorkspaceInside : ws.path;
  Run* run = &run_;

  SandboxBashOptions bash;
  bash.sandbox = &run_.sandbox();
  bash.base = spec_;
  bash.host_root = ws.path;
  bash.mount = mount;
  // In the attempt's own directory, beside its output file.
  bash.cwd_dir_fd = dir_fd_.get();
  bash.cwd_file_name = "cwd";
  bash.cwd_file_inside = (inside ? std::string("/run/hearth") : dir_) + "/" + bash.cwd_file_name;
  bash.redact = [run](std::string s) { return run->redact(std::move(s)); };
  bash_ = std::make_unique<SandboxBashSession>(run_.loop(), std::move(bash));

  agent::AgentSpec spec;
  spec.client = *client;
  spec.instructions = instructions_;
  spec.workspace = ws.path;
  spec.workspace_options.mount = mount;
  if (auto rel = run_.hidden_state_dir()) spec.workspace_options.hidden.push_back(*rel);
  // The file tools run in the engine, outside the sandbox that makes .hearth
  // read-only: they must not write the workflows the next run trusts, so
  // they do not reach .hearth at all (as with the default state directory).
  spec.workspace_options.hidden.push_back(".hearth");
  if (skill_dir_) spec.read_only_dirs.push_back(*skill_dir_);
  if (!a.tools.empty()) spec.tools = a.tools;
  spec.bash = bash_.get();
  for (const auto& name : a.tools) {
    if (!run_.workflow().tools.count(name)) continue;
    const RegisteredTool* tool = run_.host_tool(name);
    if (!tool)  // checked at start: unregistered since
      return Error{"[tools." + name + "] is implemented by the embedding program, which has no handler for it"};
    agent::CustomTool custom{{name, tool->description, tool->input_schema}, {}};
    custom.call = host_tool_call(run, tool->handler, ToolCall{run_.id(), def_.id, number_, name, "", ws.path});
    spec.custom_tools.push_back(std::move(custom));
  }
  spec.result_schema = a.result_schema;
  spec.result_retries = a.result_retries;
  spec.max_turns = a.max_turns;
  spec.max_tokens = a.max_tokens;

  auto h = agent::Harness::create(run_.loop(), std::move(spec), agent_callbacks());
  if (!h) return h.error();
  harness_ = std::move(*h);
  return {};
}

Status Attempt::start_agent(std::optional<nlohmann::json> carried) {
  Status s = carried ? harness_->resume(*carried) : harness_->start();
  if (!s.ok()) {
    harness_.reset();
    return s;
  }
  start_agent_timer();
  return {};
}

// The harness is owned by the attempt and reset only after it is done: its
// callbacks may hold `this`.
agent::HarnessCallbacks Attempt::agent_callbacks() {
  Run* run = &run_;
  agent::HarnessCallbacks cb;
  cb.redact = [run](std::string s) { return run->redact(std::move(s)); };
  cb.checkpoint = [this, run](const nlohmann::json& state) -> Status {
    return run->save_checkpoint(def_.id, number_, state);
  };
  cb.on_turn_finished = [this, run](const agent::TurnEvent& t) {
    nlohmann::json data = {{"attempt", number_}, {"turn", t.turn},
                           {"stop_reason", model::to_string(t.stop_reason)}, {"tool_calls", t.tool_calls},
                           {"usage", usage_json(t.usage)}, {"total", usage_json(t.total)},
                           {"http_attempts", t.attempts}, {"text", clip(t.text)}};
    run->commit_now([&] { return run->event(event_type::agent_turn, def_.id, std::move(data)); });
    if (!t.text.empty()) on_output("[turn " + std::to_string(t.turn) + "] " + clip(t.text, 4000) + "\n");
  };
  cb.on_tool_call = [this, run](const agent::ToolCallEvent& c) {
    nlohmann::json data = {{"attempt", number_}, {"turn", c.turn}, {"id", c.id},
                           {"tool", c.name}, {"arguments", clip(c.arguments)}, {"is_error", c.is_error},
                           {"duration_ms", c.duration.count()}, {"output", clip(c.output)}};
    run->commit_now([&] { return run->event(event_type::agent_tool_call, def_.id, std::move(data)); });
    on_output("[" + c.name + "] " + clip(c.arguments, 300) + (c.is_error ? " (error)" : "") + "\n");
  };
  cb.on_result_rejected = [this, run](const agent::RejectionEvent& r) {
    nlohmann::json data = {{"attempt", number_}, {"turn", r.turn}, {"rejection", r.rejection},
                           {"allowed", r.allowed}, {"errors", r.errors}};
    run->commit_now([&] { return run->event(event_type::agent_result_rejected, def_.id, std::move(data)); });
    std::string text = "[result rejected " + std::to_string(r.rejection) + "/" + std::to_string(r.allowed + 1) + "]";
    for (auto& e : r.errors) text += " " + e + ";";
    on_output(text + "\n");
  };
  cb.on_done = [this](const agent::AgentOutcome& outcome) {
    agent_outcome_ = outcome;
    on_ended();
  };
  return cb;
}

// The step's timeout: cancels the conversation; closed when it ends.
void Attempt::start_agent_timer() {
  if (!def_.timeout) return;
  agent_timer_ = run_.clock().timer([this] {
    agent_timed_out_ = true;
    if (harness_) harness_->cancel();
  });
  agent_timer_->start(*def_.timeout);
}

// The attempt's outcome from the agent's.
void Attempt::agent_outcome(AttemptOutcome& o) {
  AttemptRecord& a = record;
  const agent::AgentOutcome& out = *agent_outcome_;
  if (out.ok()) {
    o.status = StepStatus::succeeded;
    a.reason = "finished";
    nlohmann::json result = out.result;
    const auto& secrets = run_.secrets();
    if (secrets && !secrets->empty()) {
      auto redacted = nlohmann::json::parse(run_.redact(result.dump()), nullptr, false);
      if (!redacted.is_discarded()) result = std::move(redacted);
    }
    o.result = std::move(result);
    return;
  }
  o.status = StepStatus::failed;
  if (out.failure == agent::Failure::cancelled && agent_timed_out_) {
    a.reason = "timeout";
    o.message = "timed out after " + std::to_string(def_.timeout->count()) + "ms (turn " + std::to_string(out.turns) + ")";
  } else if (out.failure == agent::Failure::cancelled) {
    a.reason = "cancelled";
    o.status = StepStatus::cancelled;
    o.message = run_.cancel_reason().empty() ? out.reason : run_.cancel_reason();
  } else {
    a.reason = agent::to_string(out.failure);
    o.message = out.reason;
  }
}

}  // namespace hearth::engine
