// hearth::Engine (public API) over engine::Engine, engine::Store and a
// sandbox. Converts between the public value types and the engine's records.
#include "hearth/engine.h"

#include <filesystem>
#include <optional>
#include <utility>
#include <map>

#include "api/engine_impl.h"
#include "api/workflow_data.h"
#include "agent/result_schema.h"
#include "engine/events.h"
#include "engine/pg_store.h"
#include "engine/run_view.h"
#include "engine/show_view.h"
#include "hearth/hearth.h"
#include "util/json_limits.h"
#include "workflows/loader.h"

namespace hearth {

namespace {

// Text of stored JSON: strings the store holds (command output in results)
// need not be valid UTF-8, so bad bytes become U+FFFD instead of throwing.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Event public_event(const engine::EventRecord& e) {
  return Event{e.run_id, e.seq, e.at, e.type, e.step_id, dump(e.data), engine::event_to_json_line(e)};
}

RunInfo public_run(const engine::RunRecord& r) {
  RunInfo out;
  out.id = r.id;
  out.workflow = r.workflow;
  out.workflow_hash = r.workflow_hash;
  out.status = r.status;
  out.interrupted = r.status == RunStatus::running && !engine::lease_alive(r);
  out.created_at_ms = r.created_at;
  out.finished_at_ms = r.finished_at;
  out.error = r.error;
  out.payload_json = dump(r.payload);
  out.workflow_path = r.workflow_path;
  out.json = dump(engine::run_summary_json(r));
  return out;
}

StepInfo public_step(const engine::StepRecord& s) {
  StepInfo out{s.id,      s.status,         s.attempts,      s.exit_code, s.started_at, s.finished_at,
               dump(s.outputs), s.reason, dump(s.result), s.retry_at, {}};
  for (auto& a : s.attempt_list)
    out.attempt_list.push_back(
        AttemptInfo{a.number, a.started_at, a.finished_at, a.exit_code, a.signal, a.reason, a.output_tail, a.output_bytes});
  return out;
}

// Calls `fn` on the loop's next iteration from a self-deleting timer, so
// the caller may destroy the Engine inside it.
void call_soon(uv_loop_t* loop, std::function<void()> fn) {
  struct Soon {
    uv_timer_t timer{};
    std::function<void()> fn;
  };
  auto* soon = new Soon{{}, std::move(fn)};
  uv_timer_init(loop, &soon->timer);
  soon->timer.data = soon;
  uv_timer_start(&soon->timer, [](uv_timer_t* t) noexcept {
    auto* s = static_cast<Soon*>(t->data);
    auto fn = std::move(s->fn);
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) noexcept { delete static_cast<Soon*>(h->data); });
    if (fn) fn();
  }, 0, 0);
}

}  // namespace

const char* version() { return HEARTH_VERSION; }

namespace detail {

// Callbacks may unsubscribe (or subscribe) while we iterate: walk a copy of the ids.
template <class M>
static std::vector<uint64_t> ids(const M& m) {
  std::vector<uint64_t> out;
  for (auto& [id, cb] : m) out.push_back(id);
  return out;
}

void EngineImpl::on_event(const engine::EventRecord& e) {
  if (event_callbacks.empty()) return;
  Event ev = public_event(e);
  for (auto id : ids(event_callbacks))
    if (auto it = event_callbacks.find(id); it != event_callbacks.end()) it->second(ev);
}

void EngineImpl::on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) {
  for (auto id : ids(output_callbacks))
    if (auto it = output_callbacks.find(id); it != output_callbacks.end()) it->second(run_id, step_id, chunk);
}

std::function<void(const RunResult&)> EngineImpl::finished(FinishedCallback done) {
  return [this, done = std::move(done)](const RunResult& o) {
    if (done) done(o);
    maybe_drained();
  };
}

void EngineImpl::maybe_drained() {
  if (drained.empty() || engine->active_runs() != 0) return;
  for (auto& fn : std::exchange(drained, {})) call_soon(loop, std::move(fn));
}

EngineImpl& impl_of(Engine& engine) { return *engine.impl_; }

}  // namespace detail

Engine::Engine(std::unique_ptr<detail::EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::open(uv_loop_t* loop, EngineOptions options) {
  if (!loop) return Error{"hearth::Engine::open: the loop is null"};
  if (options.state_path.empty()) return Error{"hearth::Engine::open: EngineOptions::state_path is empty"};
  if (options.jobs < 0) return Error{"hearth::Engine::open: jobs must be 0 (CPUs) or more"};
  // A database over the network leaves the engine's files (scratch,
  // workspaces) to a directory of this machine: the repository's .hearth.
  std::string local_dir;
  if (engine::is_postgres_location(options.state_path) && !options.repo.empty())
    local_dir = (std::filesystem::path(options.repo) / ".hearth").string();
  auto store = engine::Store::open(options.state_path, nullptr, local_dir);
  if (!store) return store.error();
  auto impl = std::make_unique<detail::EngineImpl>();
  impl->loop = loop;
  impl->options = std::move(options);
  impl->store = std::move(*store);
  // The namespace backend runs every workflow that does not choose
  // kind = "local". Where this host cannot run it, its stand-in makes
  // start() and resume() refuse those workflows with the reason: no silent
  // fallback to the local backend.
  impl->local = sandbox::make_local_sandbox();
  impl->isolated = sandbox::make_default_sandbox();
  impl->engine = std::make_unique<engine::Engine>(loop, *impl->store, *impl->isolated, impl->options);
  impl->engine->add_sandbox(*impl->local);
  impl->engine->add_observer(impl.get());
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<std::string> Engine::start(const Workflow& workflow, StartOptions options, FinishedCallback done) {
  if (options.repo.empty()) options.repo = impl_->options.repo;
  if (options.repo.empty()) return Error{"hearth::Engine::start: no repository: set StartOptions::repo or EngineOptions::repo"};
  if (!std::filesystem::path(options.repo).is_absolute())
    return Error{"hearth::Engine::start: the repository path '" + options.repo + "' is not absolute"};
  std::string why;
  auto payload = parse_untrusted_json(options.payload_json, &why);
  if (!payload) return Error{"hearth::Engine::start: the payload is not valid JSON: " + why};
  return impl_->engine->start(workflow.data().wf, std::move(*payload), std::move(options),
                              impl_->finished(std::move(done)));
}

Result<std::string> Engine::resume(const std::string& run_id, ResumeOptions options, FinishedCallback done) {
  // Held here for the call: the engine copies what it resumes with.
  std::optional<Workflow> replacement = std::exchange(options.current, std::nullopt);
  const workflows::Workflow* current = replacement ? &replacement->data().wf : nullptr;
  return impl_->engine->resume(run_id, std::move(options), current, impl_->finished(std::move(done)));
}

bool Engine::cancel(const std::string& run_id, const std::string& reason) { return impl_->engine->cancel(run_id, reason); }
void Engine::cancel_all(const std::string& reason) { impl_->engine->cancel_all(reason); }
size_t Engine::active_runs() const { return impl_->engine->active_runs(); }

std::string Engine::sandbox_problem() const { return std::string(impl_->isolated->unavailable()); }

void Engine::shutdown(std::function<void()> drained) {
  impl_->drained.push_back(std::move(drained));
  impl_->engine->cancel_all("the engine is shutting down");
  impl_->maybe_drained();
}

uint64_t Engine::on_event(EventCallback callback) {
  uint64_t id = impl_->next_id++;
  impl_->event_callbacks[id] = std::move(callback);
  return id;
}

uint64_t Engine::on_output(OutputCallback callback) {
  uint64_t id = impl_->next_id++;
  impl_->output_callbacks[id] = std::move(callback);
  return id;
}

void Engine::unsubscribe(uint64_t id) {
  impl_->event_callbacks.erase(id);
  impl_->output_callbacks.erase(id);
}

Status Engine::register_command(const std::string& name, CommandHandler handler) {
  bool ok = !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
  if (!ok) return Error{"hearth::Engine::register_command: '" + name + "' is not a plain file name"};
  if (!handler) return Error{"hearth::Engine::register_command: the handler of '" + name + "' is empty"};
  impl_->engine->set_host_command(name, std::move(handler));
  return {};
}

Status Engine::register_tool(const std::string& name, const std::string& description,
                             const std::string& input_schema_json, ToolHandler handler) {
  std::string where = "hearth::Engine::register_tool: ";
  bool ok = !name.empty() && name.size() <= 64;
  for (char ch : name) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
  if (!ok) return Error{where + "'" + name + "' is not 1-64 letters, digits, '_' or '-'"};
  for (const char* builtin : {"read", "write", "edit", "glob", "grep", "bash", "submit_result"})
    if (name == builtin) return Error{where + "'" + name + "' is a built-in tool"};
  if (!handler) return Error{where + "the handler of '" + name + "' is empty"};
  auto schema = nlohmann::json::parse(input_schema_json, nullptr, false);
  if (schema.is_discarded()) return Error{where + "the input schema of '" + name + "' is not valid JSON"};
  if (!schema.is_object() || !schema.contains("type") || schema["type"] != "object")
    return Error{where + "the input schema of '" + name + "' must be a JSON Schema with \"type\": \"object\""};
  if (auto compiled = agent::ResultSchema::compile(schema); !compiled)
    return Error{where + "the input schema of '" + name + "': " + compiled.message()};
  impl_->engine->set_host_tool(name, engine::RegisteredTool{description, std::move(schema), std::move(handler)});
  return {};
}

Result<std::vector<RunInfo>> Engine::runs(int limit, const std::string& workflow) {
  auto rows = impl_->store->list_runs(limit, workflow);
  if (!rows) return rows.error();
  std::vector<RunInfo> out;
  for (auto& r : *rows) out.push_back(public_run(r));
  return out;
}

Result<RunInfo> Engine::run(const std::string& run_id) {
  auto r = impl_->store->load_run(run_id);
  if (!r) return r.error();
  auto steps = impl_->store->load_steps(run_id);
  if (!steps) return steps.error();
  RunInfo out = public_run(*r);
  auto needs = engine::step_needs(*r);
  for (auto& s : *steps) {
    out.steps.push_back(public_step(s));
    if (auto it = needs.find(s.id); it != needs.end()) out.steps.back().needs = it->second;
  }
  out.json = dump(engine::run_show_json(*r, *steps));
  return out;
}

Result<std::vector<Event>> Engine::events(const std::string& run_id, int64_t after_seq) {
  auto rows = impl_->store->load_events(run_id, after_seq);
  if (!rows) return rows.error();
  std::vector<Event> out;
  for (auto& e : *rows) out.push_back(public_event(e));
  return out;
}

Result<std::vector<std::string>> Engine::interrupted_runs() {
  auto ids = impl_->store->interrupted_runs();
  if (!ids) return ids.error();
  std::vector<std::string> out;
  for (auto& id : *ids) {
    auto r = impl_->store->load_run(id);
    if (r && !engine::lease_alive(*r)) out.push_back(id);
  }
  return out;
}

Result<bool> Engine::has_run(const std::string& run_id) { return impl_->store->run_exists(run_id); }

Result<std::vector<Transcript>> Engine::transcripts(const std::string& run_id, const std::string& step_id) {
  auto rows = impl_->store->load_checkpoints(run_id);
  if (!rows) return rows.error();
  std::vector<Transcript> out;
  for (auto& c : *rows)
    if (step_id.empty() || c.step_id == step_id) out.push_back(Transcript{c.step_id, c.attempt, c.turns, c.saved_at, dump(c.state)});
  return out;
}

}  // namespace hearth
