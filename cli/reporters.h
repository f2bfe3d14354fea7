// How a run looks while it happens: events and step output on a terminal,
// as plain lines, or as JSON lines.
#pragma once

#include <uv.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "hearth/hearth.h"

namespace hearth::cli {

// Progress and step output always go to stderr; stdout carries only what a
// program reads (the events of jsonl), as cargo and gh do.
enum class ReportStyle {
  live,   // stderr is a terminal: output scrolls above a redrawn block of running steps
  plain,  // not a terminal: one line per event, output lines prefixed with the step
  jsonl,  // events as JSON lines on stdout; progress lines and step output as plain, on stderr
};

/// Picks the style: jsonl when asked, live when stderr is a terminal (unless
/// TERM=dumb), plain otherwise.
ReportStyle choose_style(bool jsonl);
/// Whether to colour what is written to `fd`: `mode` "always" or "never" as
/// said; "auto": when `fd` is a terminal, TERM is not "dumb" and NO_COLOR is
/// not set (to anything).
bool use_color(const std::string& mode, int fd);

/// Draws one run from the engine's public events and output (subscribe it
/// with Engine::on_event and on_output). Lives on the loop (the live style
/// redraws on a timer); close() before the loop ends.
class ConsoleReporter final {
 public:
  /// `show_command` is how the user reads a run back ("hearth show", with
  /// the --repo/--state they gave): printed with the run id after a run that
  /// did not succeed.
  ConsoleReporter(uv_loop_t* loop, ReportStyle style, bool color, std::string show_command);
  ~ConsoleReporter();
  void on_event(const Event& e);
  void on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk);
  /// Stops the redraw timer; the reporter may be destroyed after the loop
  /// has run the close callback.
  void close();

 private:
  struct Running {
    int64_t started_ms;
    std::string partial;  // output not yet ended by a newline
  };
  void print_line(const std::string& step, std::string_view line);
  void step_finished(const Event& e, const nlohmann::json& data, const char* mark, const char* color);
  void run_finished(const Event& e, const nlohmann::json& data);
  void clear_block();
  void draw_block();
  std::string paint(const char* color, const std::string& text) const;
  static void on_timer(uv_timer_t* t) noexcept;

  ReportStyle style_;
  bool color_;
  std::string show_command_;
  std::map<std::string, Running> running_;
  int block_lines_ = 0;  // lines of the live block currently on screen
  uv_timer_t* timer_ = nullptr;  // live style only; freed by its close callback
  FILE* out_;  // stderr: progress and step output
};

}  // namespace hearth::cli
