// The agent loop. One Impl per attempt, held by the Harness and, while a
// callback of the client or the bash session runs, by that callback too
// (weak_ptr locked for the call): on_done may destroy the Harness and the
// Impl lives until the callback returns. `dead` is set when the Harness is
// destroyed; every callback checks it first.
#include "agent/harness.h"

#include <algorithm>

#include "agent/agents_md.h"
#include "agent/conversation.h"
#include "agent/result_schema.h"
#include "agent/tool_support.h"

namespace hearth::agent {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* to_string(Failure f) {
  switch (f) {
    case Failure::none: return "none";
    case Failure::model: return "model";
    case Failure::max_turns: return "max_turns";
    case Failure::token_budget: return "token_budget";
    case Failure::result_rejected: return "result_rejected";
    case Failure::refused: return "refused";
    case Failure::cut_off: return "cut_off";
    case Failure::checkpoint: return "checkpoint";
    case Failure::cancelled: return "cancelled";
  }
  return "unknown";
}

struct Harness::Impl : std::enable_shared_from_this<Impl> {
  uv_loop_t* loop = nullptr;
  AgentSpec spec;
  HarnessCallbacks cb;
  std::unique_ptr<model::Client> own_client;
  model::Client* client = nullptr;
  std::optional<FileTools> files;
  std::optional<ResultSchema> schema;
  std::vector<std::pair<const CustomTool*, ResultSchema>> custom;  // offered custom tools, their argument schemas
  std::string system;
  std::vector<model::Tool> tools;

  Conversation conv;  // messages, turns, usage, rejections (conversation.h)

  // The turn in progress.
  std::optional<model::RequestId> request;
  model::Response response;             // the assistant's reply being acted on
  std::vector<model::Block> results;     // tool results so far, in call order
  size_t next_call = 0;
  std::optional<json> accepted;          // submit_result's valid result
  std::vector<SchemaViolation> last_violations;
  bool bash_running = false, custom_running = false, in_dispatch = false;
  std::optional<ToolResult> sync_bash;   // a bash or custom tool's result delivered inside its call

  bool started = false, running = false, cancelled = false, dead = false;

  std::string redact(std::string s) const { return cb.redact ? cb.redact(std::move(s)) : s; }
  static std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

  // ---- ends -------------------------------------------------------------

  void finish(AgentOutcome out) {
    running = false;
    out.turns = conv.turns;
    out.usage = conv.usage;
    out.reason = redact(std::move(out.reason));
    if (auto done = std::move(cb.on_done)) done(out);
  }
  void fail(Failure f, std::string reason, std::optional<model::ErrorKind> kind = std::nullopt) {
    AgentOutcome out;
    out.failure = f;
    out.reason = std::move(reason);
    out.model_error = kind;
    finish(std::move(out));
  }
  void succeed(json result) {
    AgentOutcome out;
    out.result = std::move(result);
    finish(std::move(out));
  }

  /// Hands the state to the caller. False (and the attempt failed) when it
  /// could not be saved or the attempt was cancelled meanwhile.
  bool checkpoint(const char* when, const json* result = nullptr) {
    if (cb.checkpoint) {
      std::optional<std::string> cwd;
      if (spec.bash) cwd = spec.bash->cwd();
      Status saved = save_state(conv, system, cwd, result, cb.checkpoint);
      if (!saved.ok()) {
        fail(Failure::checkpoint, "checkpoint failed " + std::string(when) + " " + std::to_string(conv.turns) + ": " +
                                      saved.message());
        return false;
      }
    }
    if (cancelled) {
      fail(Failure::cancelled, "cancelled");
      return false;
    }
    return true;
  }

  // ---- turns ------------------------------------------------------------

  int64_t used() const { return conv.usage.input_tokens + conv.usage.output_tokens; }

  std::string budget_reason() const {
    return "token budget exceeded: " + std::to_string(used()) + " tokens used (input " +
           std::to_string(conv.usage.input_tokens) + " + output " + std::to_string(conv.usage.output_tokens) +
           ") over " + std::to_string(conv.turns) + " turns; max_tokens is " + std::to_string(spec.max_tokens);
  }

  void begin_turn() {
    if (cancelled) return fail(Failure::cancelled, "cancelled");
    if (conv.turns >= spec.max_turns) {
      return fail(Failure::max_turns, "max_turns reached: all " + std::to_string(spec.max_turns) +
                                          " turns used without " +
                                          (schema ? "an accepted result" : "a final reply"));
    }
    if (spec.max_tokens > 0 && used() >= spec.max_tokens) return fail(Failure::token_budget, budget_reason());
    if (cb.on_turn_started) cb.on_turn_started(conv.turns + 1);
    if (cancelled) return fail(Failure::cancelled, "cancelled");
    model::Request req;
    req.system = system;
    req.messages = conv.messages;
    req.tools = tools;
    req.max_tokens = spec.response_max_tokens;
    model::Stream stream;
    stream.on_done = [weak = weak_from_this()](model::Outcome o) {
      auto self = weak.lock();
      if (self && !self->dead) self->on_response(std::move(o));
    };
    request = client->send(std::move(req), std::move(stream));
  }

  void on_response(model::Outcome o) {
    request.reset();
    if (!o.ok()) {
      if (cancelled || o.error->kind == model::ErrorKind::cancelled) return fail(Failure::cancelled, "cancelled");
      return fail(Failure::model,
                  "the model request of turn " + std::to_string(conv.turns + 1) + " failed (" +
                      model::to_string(o.error->kind) + "): " + o.error->message,
                  o.error->kind);
    }
    response = std::move(o.response);
    conv.turns += 1;
    add(conv.usage, response.usage);
    // An empty reply is not kept: providers refuse an assistant message
    // without content in a later request.
    if (!response.message.content.empty()) conv.append(response.message);
    if (spec.max_tokens > 0 && used() > spec.max_tokens) return fail(Failure::token_budget, budget_reason());
    if (response.stop_reason == model::StopReason::refusal) {
      // Saved first, so the transcript shows what the model said; not a
      // model error, so nothing treats it as transient.
      if (!checkpoint("after the refusal of turn")) return;
      return fail(Failure::refused, "the model refused to continue in turn " + std::to_string(conv.turns) +
                                        (response.text().empty() ? "" : ": " + response.text()));
    }
    results.clear();
    next_call = 0;
    accepted.reset();
    if (response.tool_calls().empty()) return end_without_calls();
    if (!checkpoint("before the tool calls of turn")) return;
    run_calls();
  }

  /// A reply with no tool calls: the answer, or a reminder.
  void end_without_calls() {
    bool cut = response.stop_reason == model::StopReason::max_tokens;
    if (!schema) {
      if (cut) {
        return fail(Failure::cut_off, "the final reply of turn " + std::to_string(conv.turns) +
                                          " was cut off at response_max_tokens (" +
                                          std::to_string(spec.response_max_tokens) + ")");
      }
      json result = response.text();
      if (!checkpoint("after turn", &result)) return;
      turn_finished();
      if (cancelled) return fail(Failure::cancelled, "cancelled");
      return succeed(std::move(result));
    }
    std::string note;
    if (cut) {
      note = "Your reply was cut off at the response length limit (" + std::to_string(spec.response_max_tokens) +
             " tokens), so no tool call in it could run. Continue, in shorter replies.";
    } else {
      note = reject({{"", "the reply ended without calling " + std::string(kSubmitResultTool)}}) +
             "\nThe task needs a result: call " + kSubmitResultTool + " with it.";
    }
    conv.append(model::user_text(std::move(note)));
    complete_turn();
  }

  // ---- tool calls -------------------------------------------------------

  void run_calls() {
    auto calls = response.tool_calls();
    while (next_call < calls.size()) {
      if (cancelled) return fail(Failure::cancelled, "cancelled");
      const model::Block& call = *calls[next_call];
      call_started = Clock::now();
      const auto* custom_tool = find_custom(call.name);
      bool is_bash = call.name == "bash" && offered("bash");
      if ((!is_bash && !custom_tool) || accepted) {
        call_done(run_sync(call));
        continue;
      }
      std::vector<SchemaViolation> invalid;
      if (custom_tool) invalid = custom_tool->second.check(call.input, nullptr);
      if (!invalid.empty()) {
        call_done({"invalid arguments for " + call.name + ":\n" + describe(invalid), true});
        continue;
      }
      in_dispatch = true;
      sync_bash.reset();
      (is_bash ? bash_running : custom_running) = true;
      auto on_result = [weak = weak_from_this(), is_bash](ToolResult r) {
        auto self = weak.lock();
        if (!self || self->dead || !self->running) return;
        if (!(is_bash ? self->bash_running : self->custom_running)) return;  // answered already
        (is_bash ? self->bash_running : self->custom_running) = false;
        if (!is_bash) r = self->bounded(std::move(r));
        if (self->in_dispatch) {
          self->sync_bash = std::move(r);
          return;
        }
        // A cancelled call's turn is not recorded: resumed, it reads "interrupted".
        if (self->cancelled) return self->fail(Failure::cancelled, "cancelled");
        self->call_done(std::move(r));
        self->run_calls();
      };
      if (is_bash) spec.bash->run(call.input, std::move(on_result));
      else custom_tool->first->call(call.input, std::move(on_result));
      in_dispatch = false;
      if (!sync_bash && cancelled && custom_running) {  // cancelled from inside the tool's call
        custom_running = false;
        return fail(Failure::cancelled, "cancelled");
      }
      if (!sync_bash) return;  // the callback carries on
      call_done(std::move(*sync_bash));
    }
    complete_turn();
  }

  Clock::time_point call_started;

  const std::pair<const CustomTool*, ResultSchema>* find_custom(const std::string& name) const {
    for (const auto& c : custom)
      if (c.first->definition.name == name) return &c;
    return nullptr;
  }

  /// A custom tool's text made fit for the conversation: valid UTF-8, capped.
  ToolResult bounded(ToolResult r) const {
    const size_t cap = spec.tool_limits.read_max_bytes;
    if (r.text.size() > cap) {
      size_t total = r.text.size();
      r.text.resize(cap);
      r.text += "\n[output cut: " + std::to_string(total - cap) + " more bytes of " + std::to_string(total) + "]";
    }
    r.text = detail::valid_utf8(r.text);
    return r;
  }

  bool offered(const std::string& name) const {
    return std::any_of(tools.begin(), tools.end(), [&](const model::Tool& t) { return t.name == name; });
  }

  ToolResult run_sync(const model::Block& call) {
    if (accepted) return {"not run: the result was already accepted in this turn", true};
    if (schema && call.name == kSubmitResultTool) return submit(call.input);
    if (files && offered(call.name) && FileTools::has(call.name)) return files->call(call.name, call.input);
    std::string names;
    for (const auto& t : tools) names += (names.empty() ? "" : ", ") + t.name;
    return {"unknown tool '" + call.name + "' (the tools of this step are: " + names + ")", true};
  }

  void call_done(ToolResult r) {
    const model::Block& call = *response.tool_calls()[next_call];
    if (cb.on_tool_call) {
      ToolCallEvent ev;
      ev.turn = conv.turns;
      ev.id = call.id;
      ev.name = call.name;
      ev.arguments = redact(dump(call.input));
      ev.output = redact(r.text);
      ev.is_error = r.is_error;
      ev.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - call_started);
      cb.on_tool_call(ev);
    }
    results.push_back(model::tool_result(call.id, std::move(r.text), r.is_error));
    ++next_call;
  }

  ToolResult submit(const json& args) {
    json result;
    auto violations = schema->check(args, &result);
    if (violations.empty()) {
      accepted = std::move(result);
      return {"Result accepted.", false};
    }
    std::string text = reject(violations) + "\nCorrect the result and call " + kSubmitResultTool + " again.";
    return {std::move(text), true};
  }

  /// Counts a rejection, reports it, and says so in words for the model.
  std::string reject(std::vector<SchemaViolation> violations) {
    conv.rejections += 1;
    last_violations = std::move(violations);
    if (cb.on_result_rejected) {
      RejectionEvent ev{conv.turns, conv.rejections, spec.result_retries, {}};
      for (const auto& v : last_violations) ev.errors.push_back(redact(describe({v})));
      cb.on_result_rejected(ev);
    }
    int left = spec.result_retries - conv.rejections;
    std::string header = "The result was rejected (rejection " + std::to_string(conv.rejections) + "; " +
                         (left > 0 ? std::to_string(left) + " more allowed" : std::string("no more allowed")) +
                         " before the step fails):\n";
    return header + describe(last_violations);
  }

  void complete_turn() {
    if (!results.empty()) {
      model::Message m{model::Role::user, std::move(results)};
      results.clear();
      conv.append(std::move(m));
    }
    if (!checkpoint("after turn", accepted ? &*accepted : nullptr)) return;
    turn_finished();
    if (cancelled) return fail(Failure::cancelled, "cancelled");
    if (accepted) return succeed(std::move(*accepted));
    if (conv.rejections > spec.result_retries) {
      return fail(Failure::result_rejected, "the result was rejected " + std::to_string(conv.rejections) +
                                                " times (result_retries is " + std::to_string(spec.result_retries) +
                                                "); the last errors:\n" + describe(last_violations));
    }
    begin_turn();
  }

  void turn_finished() {
    if (!cb.on_turn_finished) return;
    TurnEvent ev;
    ev.turn = conv.turns;
    ev.usage = response.usage;
    ev.total = conv.usage;
    ev.stop_reason = response.stop_reason;
    ev.text = redact(response.text());
    ev.attempts = response.attempts;
    ev.tool_calls = response.tool_calls().size();
    cb.on_turn_finished(ev);
  }

  // ---- resume -----------------------------------------------------------

  /// Answers the calls of a trailing assistant message that has no results.
  void answer_dangling_calls() {
    const model::Message& last = conv.messages.back();
    model::Message answers{model::Role::user, {}};
    for (const auto& b : last.content) {
      if (b.type != model::Block::Type::tool_use) continue;
      answers.content.push_back(model::tool_result(b.id, kInterruptedToolResult, true));
      if (cb.on_tool_call) {
        cb.on_tool_call({conv.turns, b.id, b.name, redact(dump(b.input)), kInterruptedToolResult, true, {}});
      }
    }
    conv.append(std::move(answers));
  }
};

// ---- Harness --------------------------------------------------------------

Result<std::unique_ptr<Harness>> Harness::create(uv_loop_t* loop, AgentSpec spec, HarnessCallbacks callbacks) {
  auto impl = std::make_shared<Impl>();
  impl->loop = loop;
  impl->cb = std::move(callbacks);
  std::optional<std::string> agents_md;
  bool wants_files = std::any_of(spec.tools.begin(), spec.tools.end(), [](const std::string& t) { return FileTools::has(t); });
  for (const auto& t : spec.tools) {
    bool is_custom = std::any_of(spec.custom_tools.begin(), spec.custom_tools.end(),
                                 [&](const CustomTool& c) { return c.definition.name == t; });
    if (!FileTools::has(t) && t != "bash" && !is_custom) {
      return Error{"unknown tool '" + t + "' in the step's tools (the tools are read, write, edit, glob, grep, bash" +
                   std::string(spec.custom_tools.empty() ? "" : ", and the embedding program's") + ")"};
    }
  }
  if (!spec.workspace.empty()) {
    auto files = FileTools::open(spec.workspace, spec.tool_limits, spec.workspace_options);
    if (!files) return Error{"the agent's workspace: " + files.message()};
    for (const auto& [host, mount] : spec.read_only_dirs)
      if (auto s = files->add_read_only(host, mount); !s.ok()) return Error{"the folder " + host + ": " + s.message()};
    auto md = load_agents_md(files->workspace());
    if (!md) return Error{"the agent's workspace: " + md.message()};
    agents_md = *md;
    impl->files.emplace(std::move(*files));
  } else if (wants_files) {
    return Error{"the file tools (read, write, edit, glob, grep) need a workspace folder"};
  }
  bool wants_bash = std::find(spec.tools.begin(), spec.tools.end(), "bash") != spec.tools.end();
  if (wants_bash && !spec.bash) return Error{"the bash tool is offered but no bash session was given"};
  if (spec.result_schema) {
    auto compiled = ResultSchema::compile(*spec.result_schema);
    if (!compiled) return compiled.error();
    impl->schema.emplace(std::move(*compiled));
  }
  if (spec.max_turns < 1) return Error{"max_turns must be at least 1 (got " + std::to_string(spec.max_turns) + ")"};
  if (spec.result_retries < 0) return Error{"result_retries must not be negative"};
  if (spec.client) {
    impl->client = spec.client;
  } else {
    auto client = model::make_client(loop, spec.model, spec.client_options);
    if (!client) return client.error();
    impl->own_client = std::move(*client);
    impl->client = impl->own_client.get();
  }
  // Tools in a fixed order (a replayed cassette compares them): the file
  // tools in their own order, bash, then submit_result.
  for (const auto& d : FileTools::definitions()) {
    if (std::find(spec.tools.begin(), spec.tools.end(), d.name) != spec.tools.end())
      impl->tools.push_back({d.name, d.description, d.input_schema});
  }
  if (wants_bash) {
    auto d = bash_definition();
    impl->tools.push_back({d.name, d.description, d.input_schema});
  }
  for (const auto& t : spec.tools) {
    for (const auto& c : spec.custom_tools) {
      if (c.definition.name != t) continue;
      if (!c.definition.input_schema.is_object() || c.definition.input_schema.value("type", "") != "object")
        return Error{"the input schema of tool '" + t + "' must be a JSON Schema of \"type\": \"object\""};
      auto compiled = ResultSchema::compile(c.definition.input_schema);
      if (!compiled) return Error{"the input schema of tool '" + t + "': " + compiled.message()};
      impl->tools.push_back({c.definition.name, c.definition.description, c.definition.input_schema});
      impl->custom.emplace_back(nullptr, std::move(*compiled));
    }
  }
  if (impl->schema) {
    const auto& d = impl->schema->tool();
    impl->tools.push_back({d.name, d.description, d.input_schema});
  }
  impl->system = compose_system_prompt(spec.workspace_options.mount, impl->schema.has_value(), agents_md,
                                       spec.instructions);
  impl->spec = std::move(spec);
  // Point at the tools where they now live (in impl->spec), in the order offered.
  size_t next = 0;
  for (const auto& t : impl->spec.tools)
    for (const auto& c : impl->spec.custom_tools)
      if (c.definition.name == t && next < impl->custom.size()) impl->custom[next++].first = &c;
  return std::unique_ptr<Harness>(new Harness(std::move(impl)));
}

Harness::~Harness() {
  Impl& i = *impl_;
  i.dead = true;
  if (i.request && !i.own_client) i.client->cancel(*i.request);  // its on_done sees `dead`
  if (i.bash_running && i.spec.bash) i.spec.bash->cancel();
}

Status Harness::start() {
  auto self = impl_;  // on_done may destroy *this before we return
  if (self->started) return Error{"the harness was already started"};
  self->started = self->running = true;
  std::string task = self->spec.task.empty() ? default_task(self->schema.has_value()) : self->spec.task;
  self->conv.append(model::user_text(std::move(task)));
  self->begin_turn();
  return {};
}

Status Harness::resume(const json& state) {
  auto self = impl_;
  if (self->started) return Error{"the harness was already started"};
  auto loaded = load_state(state);
  if (!loaded) return Error{"cannot resume the agent: " + loaded.message()};
  if (loaded->result) {
    return Error{"cannot resume the agent: the state is of a finished agent (its result was accepted after turn " +
                 std::to_string(loaded->conv.turns) + ")"};
  }
  self->started = self->running = true;
  self->conv = std::move(loaded->conv);
  self->system = std::move(loaded->system);
  if (self->spec.bash && loaded->bash_cwd) self->spec.bash->restore_cwd(*loaded->bash_cwd);
  if (has_dangling_calls(self->conv)) {
    self->answer_dangling_calls();
    if (!self->checkpoint("after the interrupted tool calls of turn")) return {};
  }
  self->begin_turn();
  return {};
}

void Harness::cancel() {
  auto self = impl_;
  Impl& i = *self;
  if (!i.running || i.cancelled) return;
  i.cancelled = true;
  if (i.request) {
    i.client->cancel(*i.request);  // on_done at once: on_response reports the failure
  } else if (i.bash_running) {
    i.spec.bash->cancel();  // the killed command's result reports it
  } else if (i.custom_running && !i.in_dispatch) {
    i.custom_running = false;  // a custom tool cannot be stopped: its late result is dropped
    i.fail(Failure::cancelled, "cancelled");
  }
  // Otherwise we are inside one of our own callbacks: the next step sees the flag.
}

std::optional<json> Harness::finished_result(const json& state) {
  auto loaded = load_state(state);
  if (!loaded || !loaded->result) return std::nullopt;
  return loaded->result;
}

const std::string& Harness::system_prompt() const { return impl_->system; }
const std::vector<model::Tool>& Harness::tools() const { return impl_->tools; }
bool Harness::running() const { return impl_->running; }

}  // namespace hearth::agent
