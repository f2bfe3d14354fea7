#include "session.h"

#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "cli.h"

namespace hearth::cli {

ConsoleOptions Session::console_of(const Globals& g) { return {show_command(g), g.color}; }

std::unique_ptr<Session> Session::open_for_runs(const Globals& g, const std::string& repo,
                                                const std::string& events) {
  auto s = open(resolve_state(g, repo), repo, events == "jsonl" ? Report::jsonl : Report::console, console_of(g));
  if (!s) {
    std::cerr << s.message() << "\n";
    return nullptr;
  }
  return std::move(*s);
}

Result<std::unique_ptr<Session>> Session::open(const std::string& state_path, const std::string& repo, Report report,
                                               const ConsoleOptions& console) {
  std::unique_ptr<Session> s(new Session);
  uv_loop_init(&s->loop_);
  auto engine = Engine::open(&s->loop_, {.state_path = state_path, .repo = repo});
  if (!engine) return engine.error();  // ~Session closes the loop
  s->engine_ = std::move(*engine);
  // A URL may hold a password: messages name it by where it came from.
  s->state_path_ = state_path.find("://") == std::string::npos ? state_path : "the database of --store";
  if (report == Report::none) return s;
  ReportStyle style = choose_style(report == Report::jsonl);
  bool color = use_color(console.color, STDERR_FILENO);  // the reporter writes its lines to stderr
  s->reporter_ = std::make_unique<ConsoleReporter>(&s->loop_, style, color, console.show_command);
  ConsoleReporter* reporter = s->reporter_.get();
  s->engine_->on_event([reporter](const Event& e) { reporter->on_event(e); });
  s->engine_->on_output([reporter](const std::string& run_id, const std::string& step_id, std::string_view chunk) {
    reporter->on_output(run_id, step_id, chunk);
  });
  // Signal handles never keep the loop alive on their own.
  for (auto* h : {&s->sigint_, &s->sigterm_}) {
    uv_signal_init(&s->loop_, h);
    h->data = s->engine_.get();
    uv_unref(reinterpret_cast<uv_handle_t*>(h));
  }
  uv_signal_start(&s->sigint_, &Session::on_signal, SIGINT);
  uv_signal_start(&s->sigterm_, &Session::on_signal, SIGTERM);
  s->signals_ = true;
  return s;
}

void Session::on_signal(uv_signal_t* h, int signum) noexcept {
  static_cast<Engine*>(h->data)->cancel_all(std::string("interrupted by ") + (signum == SIGINT ? "SIGINT" : "SIGTERM"));
}

FinishedCallback Session::on_finished() {
  return [this](const RunResult& r) { outcomes_.push_back(r); };
}

int Session::wait() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = kExitOk;
  for (auto& o : outcomes_) {
    if (!o.error.empty()) std::cerr << "run " << o.run_id << " failed: " << o.error << "\n";
    if (o.status == RunStatus::cancelled) rc = kExitCancelled;
    else if (o.status != RunStatus::succeeded && rc == kExitOk) rc = kExitRunFailed;
  }
  return rc;
}

Session::~Session() {
  if (reporter_) reporter_->close();
  if (signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  }
  engine_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  reporter_.reset();
  uv_loop_close(&loop_);
}

}  // namespace hearth::cli
