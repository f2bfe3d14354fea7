// `hearth validate`: loads workflows and makes the checks a run makes only
// when a step starts (check_workflow), without touching the state database.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <regex>

#include <nlohmann/json.hpp>

#include "cli.h"

namespace fs = std::filesystem;

namespace hearth::cli {

namespace {

/// One finding, as `--json` prints it.
struct Diagnostic {
  std::string file;
  int line = 0, column = 0;  // 0: the message names no place in the file
  std::string severity;      // "error" | "warning"
  std::string message;
};

// Messages read "file:line:col: [warning: ]message" or "file: message"; a
// message naming no file is about `fallback_file`.
Diagnostic parse_message(const std::string& text, const std::string& severity, const std::string& fallback_file) {
  static const std::regex located(R"(^(.+?):(\d+):(\d+): (.*)$)");
  Diagnostic d{fallback_file, 0, 0, severity, text};
  std::smatch m;
  if (std::regex_match(text, m, located)) {
    d.file = m[1];
    d.line = std::stoi(m[2]);
    d.column = std::stoi(m[3]);
    d.message = m[4];
  } else if (text.rfind(fallback_file + ": ", 0) == 0) {
    d.message = text.substr(fallback_file.size() + 2);
  }
  if (d.message.rfind("warning: ", 0) == 0) d.message.erase(0, 9);
  return d;
}

nlohmann::json to_json(const Diagnostic& d) {
  auto place = [](int n) { return n > 0 ? nlohmann::json(n) : nlohmann::json(); };
  return {{"file", d.file},
          {"line", place(d.line)},
          {"column", place(d.column)},
          {"severity", d.severity},
          {"message", d.message}};
}

// Every *.toml in <repo>/.hearth/workflows, sorted; an error when there is none.
Result<std::vector<std::string>> every_workflow(const std::string& repo) {
  fs::path dir = fs::path(repo) / ".hearth" / "workflows";
  std::error_code ec;
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty()) return Error{"no workflow files (*.toml) here; name the files to check"};
  return out;
}

/// The outcome of one workflow: its diagnostics, and its summary when it loads.
struct Checked {
  std::string file;
  std::optional<Workflow> workflow;
  std::vector<Diagnostic> diagnostics;
  bool ok() const {
    return workflow && std::none_of(diagnostics.begin(), diagnostics.end(),
                                    [](const Diagnostic& d) { return d.severity == "error"; });
  }
};

Checked check_one(const std::string& repo, const std::string& arg) {
  Checked c{arg, std::nullopt, {}};
  auto path = find_workflow(repo, arg);
  if (!path) {
    c.diagnostics.push_back({arg, 0, 0, "error", path.message()});
    return c;
  }
  c.file = *path;
  auto loaded = load_workflow(*path);
  for (auto& e : loaded.errors) c.diagnostics.push_back(parse_message(e, "error", *path));
  for (auto& w : loaded.warnings) c.diagnostics.push_back(parse_message(w, "warning", *path));
  if (!loaded.workflow) return c;
  c.workflow = loaded.workflow;
  auto more = check_workflow(*loaded.workflow, repo);
  for (auto& e : more.errors) c.diagnostics.push_back(parse_message(e, "error", *path));
  for (auto& w : more.warnings) c.diagnostics.push_back(parse_message(w, "warning", *path));
  return c;
}

std::string as_text(const Diagnostic& d) {
  std::string out = d.file;
  if (d.line > 0) out += ":" + std::to_string(d.line) + ":" + std::to_string(d.column);
  return out + ": " + (d.severity == "warning" ? "warning: " : "") + d.message;
}

}  // namespace

int command_validate(const Globals& g, const std::vector<std::string>& args, bool json) {
  std::string repo = resolve_repo(g);
  std::vector<std::string> names = args;
  std::vector<Checked> all;
  if (names.empty()) {
    auto every = every_workflow(repo);
    if (every) {
      names = *every;
    } else {
      std::string dir = (fs::path(repo) / ".hearth" / "workflows").string();
      all.push_back({dir, std::nullopt, {{dir, 0, 0, "error", every.message()}}});
    }
  }
  for (auto& n : names) all.push_back(check_one(repo, n));
  bool ok = std::all_of(all.begin(), all.end(), [](const Checked& c) { return c.ok(); });
  if (json) {
    nlohmann::json out = {{"ok", ok}, {"workflows", nlohmann::json::array()}, {"diagnostics", nlohmann::json::array()}};
    for (auto& c : all) {
      out["workflows"].push_back({{"file", c.file},
                                  {"name", c.workflow ? nlohmann::json(c.workflow->name()) : nlohmann::json()},
                                  {"steps", c.workflow ? nlohmann::json(c.workflow->step_ids().size()) : nlohmann::json()},
                                  {"ok", c.ok()}});
      for (auto& d : c.diagnostics) out["diagnostics"].push_back(to_json(d));
    }
    std::cout << out.dump(2) << "\n";
    return ok ? kExitOk : kExitUsage;
  }
  for (auto& c : all) {
    for (auto& d : c.diagnostics) std::cerr << as_text(d) << "\n";
    if (!c.ok()) continue;
    size_t steps = c.workflow->step_ids().size();
    std::cout << c.file << ": ok (" << c.workflow->name() << ", " << steps << " step" << (steps == 1 ? "" : "s") << ")\n";
  }
  return ok ? kExitOk : kExitUsage;
}

}  // namespace hearth::cli
