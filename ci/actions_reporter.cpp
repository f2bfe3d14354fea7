#include "ci/actions_reporter.h"

#include <chrono>

#include "ci/actions_commands.h"
#include "ci/actions_output.h"
#include "workflows/duration.h"

namespace hearth::ci {

namespace {
// Output held for a step that is not live; beyond this only a note is kept
// (the stored tail and `hearth show` still have the end of it).
constexpr size_t kMaxHeld = 4 << 20;

std::string key_of(const std::string& run, const std::string& step) { return run + '\0' + step; }

std::string duration_of(const engine::EventRecord& e) {
  if (!e.data.contains("duration_ms") || !e.data["duration_ms"].is_number()) return "";
  return " (" + workflows::format_duration(std::chrono::milliseconds(e.data["duration_ms"].get<int64_t>())) + ")";
}

std::string str(const nlohmann::json& data, const char* key) {
  return data.contains(key) && data[key].is_string() ? data[key].get<std::string>() : std::string();
}
}  // namespace

ActionsReporter::ActionsReporter(FILE* out) : out_(out) {
  // A token the step cannot know: the delimiter's random UUID.
  token_ = "hearth-" + random_delimiter().substr(std::string("ghadelimiter_").size());
}

ActionsReporter::~ActionsReporter() = default;

void ActionsReporter::add_run(const std::string& run_id, const workflows::Workflow& wf, const std::string& file) {
  RunInfo info{wf.name, file, {}};
  for (auto& s : wf.steps) info.steps[s.id] = s.location;
  runs_[run_id] = std::move(info);
}

void ActionsReporter::write(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), out_);
  if (!s.empty()) line_open_ = s.back() != '\n';
}

void ActionsReporter::write_output(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  if (!text.empty()) line_open_ = text.back() != '\n';
  std::fflush(out_);
}

ActionsReporter::Held* ActionsReporter::find(const std::string& key) {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it)
    if (it->key == key && !it->done) return &*it;
  return nullptr;
}

std::string ActionsReporter::label(const engine::EventRecord& e) const {
  auto it = runs_.find(e.run_id);
  std::string workflow = it != runs_.end() ? it->second.workflow : e.run_id;
  return (runs_.size() > 1 ? workflow + " › " : "") + e.step_id;
}

void ActionsReporter::open_live(Held& h) {
  write(format_command("group", {}, h.title));
  write(format_command("stop-commands", {}, token_));
  write_output(h.output);
  h.output.clear();
  live_open_ = true;
}

void ActionsReporter::close_live() {
  Held& h = held_.front();
  if (line_open_) write("\n");
  write("::" + token_ + "::\n");
  write(format_command("endgroup", {}, ""));
  write(h.after);
  held_.pop_front();
  live_open_ = false;
}

// Shows held groups in start order until one still running is live.
void ActionsReporter::promote() {
  while (!live_open_ && !held_.empty()) {
    Held& h = held_.front();
    if (!h.group) {
      if (h.done) {
        write(h.after);
        held_.pop_front();
        continue;
      }
      return;
    }
    open_live(h);
    if (!h.done) break;
    close_live();
  }
  std::fflush(out_);
}

std::string ActionsReporter::finish_text(const engine::EventRecord& e) const {
  std::string name = label(e);
  std::string message = str(e.data, "message");
  if (e.type == engine::event_type::step_succeeded) return "✓ " + name + duration_of(e) + "\n";
  if (e.type == engine::event_type::step_skipped) return "- " + name + " (skipped: " + str(e.data, "reason") + ")\n";
  if (e.type == engine::event_type::step_cancelled) return "⊘ " + name + " (cancelled: " + str(e.data, "reason") + ")\n";
  if (e.type == engine::event_type::step_interrupted)
    return "↻ " + name + ": attempt " + std::to_string(e.data.value("attempt", 0)) + " was interrupted; running it again\n";
  if (e.type == engine::event_type::step_retrying) {
    auto wait = workflows::format_duration(std::chrono::milliseconds(e.data.value("retry_in_ms", int64_t{0})));
    return "↻ " + name + ": " + (message.empty() ? "failed" : message) + "; retrying in " + wait + "\n";
  }
  // step.failed: a status line and an annotation on the step's table.
  std::string text = "✗ " + name + duration_of(e) + (message.empty() ? "" : ": " + message) + "\n";
  Annotation a;
  auto run = runs_.find(e.run_id);
  a.title = (run != runs_.end() ? run->second.workflow + ": " : "") + "step '" + e.step_id + "' failed";
  if (run != runs_.end()) {
    a.file = run->second.file;
    if (auto s = run->second.steps.find(e.step_id); s != run->second.steps.end()) {
      a.line = s->second.line;
      a.col = s->second.column;
    }
  }
  if (message.empty()) message = "failed (" + str(e.data, "reason") + ")";
  return text + format_annotation("error", a, message);
}

ActionsReporter::Held ActionsReporter::line(std::string text) {
  Held h;
  h.after = std::move(text);
  h.group = false;
  h.done = true;
  return h;
}

void ActionsReporter::on_event(const engine::EventRecord& e) {
  namespace t = engine::event_type;
  const std::string& type = e.type;
  if (type == t::step_started) {
    int attempt = e.data.value("attempt", 1);
    Held h;
    h.key = key_of(e.run_id, e.step_id);
    h.title = label(e) + (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : "");
    held_.push_back(std::move(h));
  } else if (type == t::step_succeeded || type == t::step_failed || type == t::step_retrying ||
             type == t::step_cancelled || type == t::step_interrupted || type == t::step_skipped) {
    Held* h = find(key_of(e.run_id, e.step_id));
    if (!h || type == t::step_skipped || type == t::step_interrupted) {
      // Never started here (skipped, cancelled while pending, or found
      // interrupted on resume): a line, in its turn.
      held_.push_back(line(finish_text(e)));
    } else {
      h->after = finish_text(e);
      h->done = true;
      if (live_open_ && h == &held_.front()) close_live();
    }
  } else if (type == t::run_started || type == t::run_resumed || type == t::run_finished ||
             type == t::run_cancelling) {
    std::string text;
    std::string workflow = str(e.data, "workflow");
    if (type == t::run_started) text = "run " + e.run_id + " (" + workflow + ")\n";
    else if (type == t::run_resumed) text = "resume run " + e.run_id + "\n";
    else if (type == t::run_cancelling) text = "cancelling run " + e.run_id + ": " + str(e.data, "reason") + "\n";
    else text = "run " + e.run_id + " " + str(e.data, "status") + duration_of(e) + "\n";
    held_.push_back(line(std::move(text)));
  }
  promote();
}

void ActionsReporter::on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) {
  Held* h = find(key_of(run_id, step_id));
  if (!h) return;
  if (live_open_ && h == &held_.front()) {
    write_output(chunk);
    return;
  }
  if (h->output.size() < kMaxHeld) {
    h->output.append(chunk.substr(0, kMaxHeld - h->output.size()));
    if (h->output.size() == kMaxHeld) h->output += "\n[hearth: output cut here; see `hearth show`]\n";
  }
}

void ActionsReporter::flush() {
  if (live_open_) {
    held_.front().done = true;
    close_live();
  }
  for (auto& h : held_) h.done = true;
  promote();
}

}  // namespace hearth::ci
