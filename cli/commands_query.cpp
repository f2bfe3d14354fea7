// `hearth runs` and `hearth show`: read-only views of the store.
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "session.h"

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
  return format_duration(std::chrono::milliseconds(*to - from));
}

// The status as a user should read it: a run whose engine is gone is "interrupted".
std::string shown_status(const RunInfo& r) { return r.interrupted ? "interrupted" : to_string(r.status); }

Result<std::unique_ptr<Session>> open_store(const Globals& g) {
  std::string repo = resolve_repo(g);
  return Session::open(resolve_state(g, repo), repo, Session::Report::none);
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
  auto runs = (*store)->engine().runs(limit, workflow);
  if (!runs) {
    std::cerr << runs.message() << "\n";
    return kExitRunFailed;
  }
  if (json) {
    auto arr = nlohmann::json::array();
    for (auto& r : *runs) arr.push_back(nlohmann::json::parse(r.json));
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  if (runs->empty()) {
    std::cout << "no runs yet in " << (*store)->state_path() << "\n";
    return kExitOk;
  }
  std::cout << std::left << std::setw(24) << "ID" << std::setw(20) << "WORKFLOW" << std::setw(12) << "STATUS"
            << std::setw(21) << "STARTED" << "DURATION\n";
  for (auto& r : *runs) {
    std::cout << std::left << std::setw(24) << r.id << std::setw(20) << r.workflow << std::setw(12) << shown_status(r)
              << std::setw(21) << local_time(r.created_at_ms) << span(r.created_at_ms, r.finished_at_ms) << "\n";
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

int print_transcripts(Engine& engine, const std::string& run_id, const std::string& step) {
  auto transcripts = engine.transcripts(run_id, step);
  if (!transcripts) {
    std::cerr << transcripts.message() << "\n";
    return kExitRunFailed;
  }
  for (auto& c : *transcripts) {
    std::cout << "step " << c.step_id << "  attempt " << c.attempt << "  turns " << c.turns << "\n";
    nlohmann::json state = nlohmann::json::parse(c.json, nullptr, false);
    if (!state.is_object()) state = nlohmann::json::object();
    for (auto& m : state.value("messages", nlohmann::json::array())) {
      std::cout << "  " << m.value("role", "?") << ":\n";
      for (auto& b : m.value("content", nlohmann::json::array())) print_block(b);
    }
    if (state.contains("result")) std::cout << "  result: " << state["result"].dump() << "\n";
    auto usage = state.value("usage", nlohmann::json::object());
    std::cout << "  tokens: " << usage.value("input_tokens", 0) << " in, " << usage.value("output_tokens", 0)
              << " out\n\n";
  }
  if (transcripts->empty()) {
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
  auto run = (*store)->engine().run(run_id);
  if (!run) {
    std::cerr << run.message() << "\n";
    return kExitUsage;
  }
  if (transcript) return print_transcripts((*store)->engine(), run_id, step);
  if (json) {
    std::cout << nlohmann::json::parse(run->json).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::cout << "run " << run->id << "\n"
            << "  workflow  " << run->workflow << " (" << run->workflow_path << ")\n"
            << "  status    " << shown_status(*run)
            << (shown_status(*run) == "interrupted" ? " (continue it with: hearth resume " + run->id + ")" : "") << "\n"
            << "  started   " << local_time(run->created_at_ms) << "\n"
            << "  duration  " << span(run->created_at_ms, run->finished_at_ms) << "\n";
  if (!run->error.empty()) std::cout << "  error     " << run->error << "\n";
  for (auto& s : run->steps) {
    std::cout << "\nstep " << s.id << "  " << to_string(s.status);
    if (s.attempts) std::cout << "  attempts " << s.attempts;
    if (s.exit_code) std::cout << "  exit " << *s.exit_code;
    if (s.started_at_ms) std::cout << "  " << span(*s.started_at_ms, s.finished_at_ms);
    std::cout << "\n";
    if (!s.reason.empty()) std::cout << "  reason: " << s.reason << "\n";
    if (s.status == StepStatus::waiting && s.retry_at_ms) std::cout << "  next attempt at " << local_time(*s.retry_at_ms) << "\n";
    if (s.attempt_list.size() > 1) {
      for (auto& a : s.attempt_list) {
        std::cout << "  attempt " << a.number << ": " << (a.reason.empty() ? "running" : a.reason);
        if (a.exit_code) std::cout << ", exit " << *a.exit_code;
        if (a.finished_at_ms) std::cout << ", " << span(a.started_at_ms, a.finished_at_ms);
        std::cout << "\n";
      }
    }
    const nlohmann::json outputs = nlohmann::json::parse(s.outputs_json);
    for (auto& [k, v] : outputs.items())
      std::cout << "  output " << k << " = " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    if (s.result_json != "null") std::cout << "  result " << s.result_json << "\n";
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
