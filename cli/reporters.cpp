#include "reporters.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace hearth::cli {

namespace {
const char* kRed = "31";
const char* kGreen = "32";
const char* kYellow = "33";
const char* kDim = "2";
const char* kBold = "1";

std::string duration_of(const nlohmann::json& data) {
  if (!data.contains("duration_ms") || !data["duration_ms"].is_number()) return "";
  return format_duration(std::chrono::milliseconds(data["duration_ms"].get<int64_t>()));
}

// data[key] when it is a string, else "".
std::string text_of(const nlohmann::json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "step 'x': cause" -> "cause": the line already names the step.
std::string without_step_prefix(const std::string& text, const std::string& step) {
  std::string prefix = "step '" + step + "': ";
  return text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

ReportStyle choose_style(bool jsonl) {
  if (jsonl) return ReportStyle::jsonl;
  const char* term = std::getenv("TERM");
  if (isatty(STDERR_FILENO) && !(term && std::strcmp(term, "dumb") == 0)) return ReportStyle::live;
  return ReportStyle::plain;
}

bool use_color(const std::string& mode, int fd) {
  if (mode == "always" || mode == "never") return mode == "always";
  const char* term = std::getenv("TERM");
  return std::getenv("NO_COLOR") == nullptr && !(term && std::strcmp(term, "dumb") == 0) && isatty(fd);
}

ConsoleReporter::ConsoleReporter(uv_loop_t* loop, ReportStyle style, bool color, std::string show_command)
    : style_(style), color_(color), show_command_(std::move(show_command)), out_(stderr) {
  if (style_ == ReportStyle::live) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop, timer_);
    timer_->data = this;
    uv_timer_start(timer_, &ConsoleReporter::on_timer, 250, 250);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));  // never keeps the loop alive
  }
}

ConsoleReporter::~ConsoleReporter() { close(); }

void ConsoleReporter::close() {
  if (!timer_) return;
  clear_block();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_->data = nullptr;
  timer_ = nullptr;
}

void ConsoleReporter::on_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<ConsoleReporter*>(t->data);
  if (!self) return;
  self->clear_block();
  self->draw_block();
}

std::string ConsoleReporter::paint(const char* color, const std::string& text) const {
  if (!color_) return text;
  return std::string("\x1b[") + color + "m" + text + "\x1b[0m";
}

void ConsoleReporter::clear_block() {
  if (style_ != ReportStyle::live || block_lines_ == 0) return;
  std::fprintf(out_, "\x1b[%dA\x1b[J", block_lines_);
  block_lines_ = 0;
}

void ConsoleReporter::draw_block() {
  if (style_ != ReportStyle::live) return;
  int64_t now = now_ms();
  for (auto& [step, r] : running_) {
    std::string elapsed = format_duration(std::chrono::milliseconds(now - r.started_ms));
    std::fprintf(out_, "%s %s %s\n", paint(kYellow, "●").c_str(), step.c_str(), paint(kDim, elapsed).c_str());
    ++block_lines_;
  }
  std::fflush(out_);
}

void ConsoleReporter::print_line(const std::string& step, std::string_view line) {
  std::string prefix = paint(kDim, "[" + step + "] ");
  std::fprintf(out_, "%s%.*s\n", prefix.c_str(), static_cast<int>(line.size()), line.data());
}

void ConsoleReporter::on_output(const std::string&, const std::string& step_id, std::string_view chunk) {
  auto& r = running_[step_id];
  r.partial.append(chunk);
  size_t start = 0, nl;
  bool cleared = false;
  while ((nl = r.partial.find('\n', start)) != std::string::npos) {
    if (!cleared) {
      clear_block();
      cleared = true;
    }
    print_line(step_id, std::string_view(r.partial).substr(start, nl - start));
    start = nl + 1;
  }
  r.partial.erase(0, start);
  // A line longer than 64 KiB is shown in pieces rather than held.
  if (r.partial.size() > 65536) {
    if (!cleared) clear_block();
    cleared = true;
    print_line(step_id, r.partial);
    r.partial.clear();
  }
  if (cleared) {
    draw_block();
    std::fflush(out_);  // a pipe is block-buffered; a reader (tee, CI log) sees each line as it is printed
  }
}

void ConsoleReporter::step_finished(const Event& e, const nlohmann::json& data, const char* mark, const char* color) {
  auto it = running_.find(e.step_id);
  if (it != running_.end()) {
    if (!it->second.partial.empty()) print_line(e.step_id, it->second.partial);
    running_.erase(it);
  }
  std::string line = paint(color, mark) + " " + e.step_id;
  std::string d = duration_of(data);
  if (!d.empty()) line += " " + paint(kDim, d);
  std::string message = text_of(data, "message"), reason = text_of(data, "reason");
  if (!message.empty()) {
    line += ": " + message;
  } else if (e.type == "step.failed") {
    // A step that failed before it ran (a missing skill, a refused grant)
    // has only a reason; it is the one thing the user needs on this line.
    line += ": " + without_step_prefix(reason.empty() ? "failed" : reason, e.step_id);
  } else if (!reason.empty()) {
    line += paint(kDim, " (" + reason + ")");
  }
  std::fprintf(out_, "%s\n", line.c_str());
}

void ConsoleReporter::run_finished(const Event& e, const nlohmann::json& data) {
  std::string status = data.value("status", std::string());
  const char* color = status == "succeeded" ? kGreen : status == "cancelled" ? kYellow : kRed;
  std::fprintf(out_, "%s %s %s in %s\n", paint(kBold, "run").c_str(), e.run_id.c_str(), paint(color, status).c_str(),
               duration_of(data).c_str());
  if (status != "succeeded") std::fprintf(out_, "details: %s %s\n", show_command_.c_str(), e.run_id.c_str());
}

void ConsoleReporter::on_event(const Event& e) {
  // data_json is a JSON object; value() on anything else would throw.
  nlohmann::json data = nlohmann::json::parse(e.data_json, nullptr, false);
  if (!data.is_object()) data = nlohmann::json::object();
  if (style_ == ReportStyle::jsonl) {
    std::fprintf(stdout, "%s\n", e.json.c_str());
    std::fflush(stdout);
    if (e.type == "step.started") running_[e.step_id] = {e.at_ms, ""};
    else if (e.type.rfind("step.", 0) == 0) running_.erase(e.step_id);
    if (e.type == "run.finished" && text_of(data, "status") != "succeeded")
      std::fprintf(out_, "details: %s %s\n", show_command_.c_str(), e.run_id.c_str());
    return;
  }
  clear_block();
  if (e.type == "run.started") {
    std::fprintf(out_, "%s %s %s\n", paint(kBold, "run").c_str(), e.run_id.c_str(),
                 paint(kDim, "(" + data.value("workflow", std::string()) + ")").c_str());
  } else if (e.type == "step.started") {
    running_[e.step_id] = {e.at_ms, ""};
    int attempt = data.value("attempt", 1);
    if (style_ == ReportStyle::plain || attempt > 1)
      std::fprintf(out_, "%s %s%s\n", paint(kYellow, "▶").c_str(), e.step_id.c_str(),
                   attempt > 1 ? (" (attempt " + std::to_string(attempt) + ")").c_str() : "");
  } else if (e.type == "step.succeeded") {
    step_finished(e, data, "✓", kGreen);
  } else if (e.type == "step.failed") {
    step_finished(e, data, "✗", kRed);
  } else if (e.type == "step.skipped") {
    step_finished(e, data, "-", kDim);
  } else if (e.type == "step.cancelled") {
    step_finished(e, data, "⊘", kYellow);
  } else if (e.type == "run.resumed") {
    std::string detail;
    for (const char* key : {"interrupted", "reset"}) {
      if (!data.contains(key) || data[key].empty()) continue;
      std::string ids;
      for (auto& id : data[key]) ids += (ids.empty() ? "" : ", ") + id.get<std::string>();
      detail += std::string(detail.empty() ? "" : "; ") + key + ": " + ids;
    }
    std::fprintf(out_, "%s %s%s\n", paint(kBold, "resume run").c_str(), e.run_id.c_str(),
                 detail.empty() ? "" : paint(kDim, " (" + detail + ")").c_str());
  } else if (e.type == "step.retrying") {
    auto it = running_.find(e.step_id);
    if (it != running_.end()) {
      if (!it->second.partial.empty()) print_line(e.step_id, it->second.partial);
      running_.erase(it);
    }
    std::string wait = format_duration(std::chrono::milliseconds(data.value("retry_in_ms", int64_t{0})));
    std::fprintf(out_, "%s %s: %s; retrying in %s\n", paint(kYellow, "↻").c_str(), e.step_id.c_str(),
                 data.value("message", std::string("failed")).c_str(), wait.c_str());
  } else if (e.type == "step.interrupted") {
    std::fprintf(out_, "%s %s: attempt %d was interrupted; running it again\n", paint(kYellow, "↻").c_str(),
                 e.step_id.c_str(), data.value("attempt", 0));
  } else if (e.type == "run.cancelling") {
    std::fprintf(out_, "%s\n", paint(kYellow, "cancelling: " + data.value("reason", std::string())).c_str());
  } else if (e.type == "run.finished") {
    run_finished(e, data);
  }
  draw_block();
  std::fflush(out_);
}

}  // namespace hearth::cli
