// A loaded, validated workflow (part of libhearth's public API).
//
// Loading reads the file and parses it on the calling thread; it does not
// touch a loop and may be called from any thread. A Workflow is immutable
// and cheap to copy (copies share one loaded definition), and may be passed
// between threads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/export.h"
#include "hearth/status.h"

namespace hearth {

namespace detail {
struct WorkflowData;
}

/// One way a payload breaks a workflow's [inputs], attributed to one input.
struct InputProblem {
  std::string input;       // the declared input's name
  std::string value_json;  // the value given, as JSON text (cut at 80 bytes); empty when it is missing
  std::string constraint;  // the keyword as written in [inputs]: `pattern = "^v"`, `required = true`
  std::string problem;     // what the keyword asks: "must match the pattern ^v", "is required"
};

class HEARTH_API Workflow {
 public:
  const std::string& name() const;
  const std::string& description() const;
  /// As given to load_workflow (or the name given to load_workflow_text).
  const std::string& path() const;
  /// "sha256:<hex>" of the file's text; recorded with each run.
  const std::string& hash() const;
  /// Step ids in file order.
  std::vector<std::string> step_ids() const;
  /// `[on] github = [...]` as written.
  const std::vector<std::string>& github_triggers() const;
  /// Whether a GitHub event (name, and the payload's "action" or "") starts it.
  bool starts_on(std::string_view event, std::string_view action) const;
  /// The JSON text of one payload value given as text (`hearth run --input
  /// key=value`), typed by the declared type of `key` in [inputs]: integer,
  /// number and boolean parse the text, object and array parse it as JSON,
  /// anything else is a string. The error names the input.
  Result<std::string> input_value(const std::string& key, const std::string& text) const;
  /// The inputs [inputs] declares, sorted by name.
  std::vector<std::string> input_names() const;
  /// Every way the payload (a JSON object's text) breaks [inputs] once the
  /// declared defaults are filled in; empty when start() would accept it.
  /// Text that is not a JSON object is reported as one problem with an
  /// empty `input`.
  std::vector<InputProblem> input_problems(const std::string& payload_json) const;

  /// For libhearth's own implementation.
  const detail::WorkflowData& data() const { return *data_; }
  explicit Workflow(std::shared_ptr<const detail::WorkflowData> data) : data_(std::move(data)) {}

 private:
  std::shared_ptr<const detail::WorkflowData> data_;
};

/// A workflow, or every error found in it (each "file:line:col: message").
struct LoadResult {
  std::optional<Workflow> workflow;  // empty when errors is not
  std::vector<std::string> errors;
  /// Loadable but likely unsafe ("file:line:col: warning: ..."), e.g. a
  /// `${{ }}` value written to $HEARTH_OUTPUT as key=value.
  std::vector<std::string> warnings;
  explicit operator bool() const { return workflow.has_value(); }
};

/// Loads and validates a workflow file (its steps, expressions and its
/// [inputs] schema).
HEARTH_API LoadResult load_workflow(const std::string& path);
/// Loads and validates workflow text; `name` stands for the file in messages.
HEARTH_API LoadResult load_workflow_text(std::string_view text, const std::string& name);

/// What check_workflow() found.
struct CheckResult {
  std::vector<std::string> errors;    // "file:line:col: message": start() would fail, or a step would
  std::vector<std::string> warnings;  // "file:line:col: warning: message"
  bool ok() const { return errors.empty(); }
};

/// The checks a run makes only when a step starts, made now against the
/// repository `repo` (what `hearth validate` adds to load_workflow). Errors:
/// a skill step's skill that is missing, whose SKILL.md does not load, or
/// whose folder resolves outside `repo` (the same lookup a run makes); a
/// `result` schema that does not compile. Warnings: the skill's spec limits,
/// and each host command or tool (only a program that registers it can run
/// the steps that use it). Reads files; never runs anything.
HEARTH_API CheckResult check_workflow(const Workflow& workflow, const std::string& repo);

/// Finds a workflow file the way `hearth run NAME` does: `name_or_path` when
/// it is an existing file, else <repo>/.hearth/workflows/<name>.toml. The
/// error says what is missing and lists the available names.
HEARTH_API Result<std::string> find_workflow(const std::string& repo, const std::string& name_or_path);

/// " (did you mean 'x'?)" when one of `candidates` is close enough to `word`
/// to be a typo of it, else "". For messages about names a user typed.
HEARTH_API std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

/// A duration as Hearth prints it: "850ms", "12.3s", "4m05s", "1h02m".
HEARTH_API std::string format_duration(std::chrono::milliseconds d);
/// A duration as a workflow's `timeout` takes it: <number><unit> parts with
/// units ms, s, m, h ("500ms", "1h30m"); positive and under 30 days.
HEARTH_API Result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace hearth
