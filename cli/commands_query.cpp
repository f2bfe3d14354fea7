// `hearth runs` and `hearth show`: read-only views of the store.
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "cli/cli.h"
#include "engine/engine.h"
#include "engine/run_view.h"
#include "engine/store.h"
#include "workflows/duration.h"

namespace hearth::cli {

namespace {

constexpr size_t kShowTailLines = 20;

std::string local_time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string span(int64_t from, std::optional<int64_t> to) {
  if (!to) return "-";
  return workflows::format_duration(std::chrono::milliseconds(*to - from));
}

using engine::run_summary_json;
using engine::shown_status;

Result<std::unique_ptr<engine::Store>> open_store(const Globals& g) {
  std::string repo = resolve_repo(g);
  return engine::Store::open(resolve_state(g, repo));
}

// The last `n` lines of `text`.
std::string last_lines(const std::string& text, size_t n) {
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  for (size_t lines = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++lines == n) break;
  }
  return text.substr(pos, end - pos);
}

}  // namespace

int command_runs(const Globals& g, bool json, int limit, const std::string& workflow) {
  auto store = open_store(g);
  if (!store) {
    std::cerr << store.message() << "\n";
    return kExitRunFailed;
  }
  auto runs = (*store)->list_runs(limit, workflow);
  if (!runs) {
    std::cerr << runs.message() << "\n";
    return kExitRunFailed;
  }
  if (json) {
    auto arr = nlohmann::json::array();
    for (auto& r : *runs) arr.push_back(run_summary_json(r));
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  if (runs->empty()) {
    std::cout << "no runs yet in " << (*store)->path() << "\n";
    return kExitOk;
  }
  std::cout << std::left << std::setw(24) << "ID" << std::setw(20) << "WORKFLOW" << std::setw(12) << "STATUS"
            << std::setw(21) << "STARTED" << "DURATION\n";
  for (auto& r : *runs) {
    std::cout << std::left << std::setw(24) << r.id << std::setw(20) << r.workflow << std::setw(12) << shown_status(r)
              << std::setw(21) << local_time(r.created_at) << span(r.created_at, r.finished_at) << "\n";
  }
  return kExitOk;
}

std::string model_spec_arg(const std::string& model) {
  const std::string prefix = "replay:";
  if (model.rfind(prefix, 0) != 0 || model.size() == prefix.size() || model[prefix.size()] == '/') return model;
  return prefix + std::filesystem::absolute(model.substr(prefix.size())).lexically_normal().string();
}

namespace {

// One message block of a checkpointed conversation, for a reader.
void print_block(const nlohmann::json& b) {
  auto indent = [](const std::string& text, size_t cap) {
    std::string t = text.size() > cap ? text.substr(0, cap) + "\n… (" + std::to_string(text.size() - cap) + " more bytes)" : text;
    std::string out;
    size_t start = 0;
    while (start <= t.size()) {
      size_t nl = t.find('\n', start);
      if (nl == std::string::npos) nl = t.size();
      out += "      " + t.substr(start, nl - start) + "\n";
      start = nl + 1;
    }
    return out;
  };
  std::string type = b.value("type", "");
  if (type == "text") std::cout << indent(b.value("text", ""), 4000);
  else if (type == "tool_use")
    std::cout << "      → " << b.value("name", "") << " " << b.value("input", nlohmann::json::object()).dump() << "\n";
  else if (type == "tool_result")
    std::cout << "      ← " << (b.value("is_error", false) ? "(error) " : "") << "\n"
              << indent(b.value("content", b.value("text", "")), 2000);
}

int print_transcripts(engine::Store& store, const std::string& run_id, const std::string& step) {
  auto checkpoints = store.load_checkpoints(run_id);
  if (!checkpoints) {
    std::cerr << checkpoints.message() << "\n";
    return kExitRunFailed;
  }
  bool any = false;
  for (auto& c : *checkpoints) {
    if (!step.empty() && c.step_id != step) continue;
    any = true;
    std::cout << "step " << c.step_id << "  attempt " << c.attempt << "  turns " << c.turns << "\n";
    for (auto& m : c.state.value("messages", nlohmann::json::array())) {
      std::cout << "  " << m.value("role", "?") << ":\n";
      for (auto& b : m.value("content", nlohmann::json::array())) print_block(b);
    }
    if (c.state.contains("result")) std::cout << "  result: " << c.state["result"].dump() << "\n";
    auto usage = c.state.value("usage", nlohmann::json::object());
    std::cout << "  tokens: " << usage.value("input_tokens", 0) << " in, " << usage.value("output_tokens", 0)
              << " out\n\n";
  }
  if (!any) {
    std::cerr << "run " << run_id << " has no " << (step.empty() ? "skill or prompt step" : "step '" + step + "'")
              << " with a recorded conversation\n";
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace

int command_show(const Globals& g, const std::string& run_id, bool json, bool transcript, const std::string& step) {
  auto store = open_store(g);
  if (!store) {
    std::cerr << store.message() << "\n";
    return kExitRunFailed;
  }
  auto run = (*store)->load_run(run_id);
  if (!run) {
    std::cerr << run.message() << "\n";
    return kExitUsage;
  }
  if (transcript) return print_transcripts(**store, run_id, step);
  auto steps = (*store)->load_steps(run_id);
  if (!steps) {
    std::cerr << steps.message() << "\n";
    return kExitRunFailed;
  }
  if (json) {
    nlohmann::json j = engine::run_detail_json(*run, *steps);
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::cout << "run " << run->id << "\n"
            << "  workflow  " << run->workflow << " (" << run->workflow_path << ")\n"
            << "  status    " << shown_status(*run)
            << (shown_status(*run) == "interrupted" ? " (continue it with: hearth resume " + run->id + ")" : "") << "\n"
            << "  started   " << local_time(run->created_at) << "\n"
            << "  duration  " << span(run->created_at, run->finished_at) << "\n";
  if (!run->error.empty()) std::cout << "  error     " << run->error << "\n";
  for (auto& s : *steps) {
    std::cout << "\nstep " << s.id << "  " << s.status;
    if (s.attempts) std::cout << "  attempts " << s.attempts;
    if (s.exit_code) std::cout << "  exit " << *s.exit_code;
    if (s.started_at) std::cout << "  " << span(*s.started_at, s.finished_at);
    std::cout << "\n";
    if (!s.reason.empty()) std::cout << "  reason: " << s.reason << "\n";
    if (s.status == "waiting" && s.retry_at) std::cout << "  next attempt at " << local_time(*s.retry_at) << "\n";
    if (s.attempt_list.size() > 1) {
      for (auto& a : s.attempt_list) {
        std::cout << "  attempt " << a.number << ": " << (a.reason.empty() ? "running" : a.reason);
        if (a.exit_code) std::cout << ", exit " << *a.exit_code;
        if (a.finished_at) std::cout << ", " << span(a.started_at, a.finished_at);
        std::cout << "\n";
      }
    }
    for (auto& [k, v] : s.outputs.items())
      std::cout << "  output " << k << " = " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    if (!s.result.is_null()) std::cout << "  result " << s.result.dump() << "\n";
    if (!s.attempt_list.empty() && !s.attempt_list.back().output_tail.empty()) {
      std::string tail = last_lines(s.attempt_list.back().output_tail, kShowTailLines);
      std::cout << "  last output:\n";
      size_t start = 0;
      while (start <= tail.size()) {
        size_t nl = tail.find('\n', start);
        if (nl == std::string::npos) nl = tail.size();
        std::cout << "    | " << tail.substr(start, nl - start) << "\n";
        start = nl + 1;
      }
    }
  }
  return kExitOk;
}

}  // namespace hearth::cli
