// How a run looks in a GitHub Actions log: each step's output folded in a
// ::group:: titled with the step, its status and duration; a failing step
// as an ::error annotation on the step's line of the workflow file.
//
// Groups cannot nest or interleave in the Actions log, so one step at a time
// is "live" (its output streams inside its open group) and the output of
// steps running beside it is held until their turn. Step output runs inside
// ::stop-commands:: with a random token: a step (or a hostile payload it
// echoes) cannot issue workflow commands of its own.
#pragma once

#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "engine/events.h"
#include "workflows/workflow.h"

namespace hearth::ci {

class ActionsReporter final : public engine::Observer {
 public:
  /// Writes to `out` (stdout in `hearth ci`); not owned.
  explicit ActionsReporter(FILE* out);
  ~ActionsReporter() override;

  /// Tells the reporter which workflow a run executes, so annotations can
  /// point at `file` (relative to the repository root) and the step's line.
  /// Call before the run starts or resumes.
  void add_run(const std::string& run_id, const workflows::Workflow& workflow, const std::string& file);

  void on_event(const engine::EventRecord& e) override;
  void on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) override;

  /// Closes the open group and prints every held one (after the loop ends).
  void flush();

 private:
  // A step's group, or (group false) a line waiting for the groups before it.
  struct Held {
    std::string key;     // run id + '\0' + step id; empty for a line
    std::string title;   // the group's title
    std::string output;  // what the step printed, not yet shown
    std::string after;   // printed after the group closes: status line, annotation
    bool group = true;
    bool done = false;
  };
  struct RunInfo {
    std::string workflow, file;
    std::map<std::string, workflows::Location> steps;
  };
  static Held line(std::string text);
  Held* find(const std::string& key);
  void open_live(Held& h);
  void close_live();
  void promote();
  void write(const std::string& s);
  void write_output(std::string_view text);
  std::string label(const engine::EventRecord& e) const;
  std::string finish_text(const engine::EventRecord& e) const;

  FILE* out_;
  std::map<std::string, RunInfo> runs_;
  std::deque<Held> held_;   // started steps in start order; the front may be live
  bool live_open_ = false;  // held_.front() is streaming in an open group
  bool line_open_ = false;  // the last output written did not end in a newline
  std::string token_;       // ::stop-commands:: token, random per reporter
};

}  // namespace hearth::ci
