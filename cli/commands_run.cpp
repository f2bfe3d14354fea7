// `hearth run` and `hearth validate`.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli.h"
#include "cli/session.h"
#include "engine/engine.h"
#include "engine/inputs.h"
#include "workflows/loader.h"
#include "workflows/suggest.h"

namespace fs = std::filesystem;

namespace hearth::cli {

std::string resolve_repo(const Globals& g) {
  std::error_code ec;
  if (!g.repo.empty()) return fs::absolute(g.repo, ec).lexically_normal().string();
  fs::path cwd = fs::current_path(ec);
  for (fs::path p = cwd; !p.empty(); p = p.parent_path()) {
    if (fs::is_directory(p / ".hearth", ec) || fs::exists(p / ".git", ec)) return p.string();
    if (p == p.parent_path()) break;
  }
  return cwd.string();
}

std::string resolve_state(const Globals& g, const std::string& repo) {
  if (!g.state.empty()) return fs::absolute(g.state).string();
  return (fs::path(repo) / ".hearth" / "state.db").string();
}

Result<std::string> resolve_workflow(const std::string& arg, const std::string& repo) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) return arg;
  bool looks_like_path = arg.find('/') != std::string::npos || arg.ends_with(".toml");
  fs::path dir = fs::path(repo) / ".hearth" / "workflows";
  fs::path named = dir / (arg + ".toml");
  if (!looks_like_path && fs::is_regular_file(named, ec)) return named.string();
  std::vector<std::string> names;
  for (auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  if (looks_like_path) return Error{arg + ": no such workflow file"};
  std::string msg = "no workflow named '" + arg + "' in " + dir.string() + workflows::did_you_mean(arg, names);
  if (!names.empty()) {
    msg += "; available:";
    for (auto& n : names) msg += " " + n;
  }
  return Error{msg};
}

namespace {

Result<nlohmann::json> read_payload(const std::string& spec) {
  if (spec.empty()) return nlohmann::json::object();
  std::string text = spec, where = "--payload";
  if (spec[0] == '@') {
    std::ifstream in(spec.substr(1), std::ios::binary);
    if (!in) return Error{"--payload " + spec + ": cannot read " + spec.substr(1) + ": " + std::strerror(errno)};
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    where = spec.substr(1);
  }
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object()) return Error{where + ": the payload must be a JSON object, not " + std::string(j.type_name())};
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    return Error{where + ": invalid JSON: " + e.what()};
  }
}

}  // namespace

// Loads and validates; prints every error to stderr.
std::optional<workflows::Workflow> load_or_report(const std::string& path) {
  auto loaded = workflows::load_workflow_file(path);
  for (auto& e : loaded.errors) std::cerr << e << "\n";
  if (!loaded.ok()) return std::nullopt;
  if (auto s = engine::check_inputs_schema(loaded.workflow->inputs); !s.ok()) {
    std::cerr << path << ": " << s.message() << "\n";
    return std::nullopt;
  }
  return std::move(*loaded.workflow);
}

namespace {

}  // namespace

int command_validate(const Globals& g, const std::vector<std::string>& args) {
  std::string repo = resolve_repo(g);
  int rc = kExitOk;
  for (auto& arg : args) {
    auto path = resolve_workflow(arg, repo);
    if (!path) {
      std::cerr << path.message() << "\n";
      rc = kExitUsage;
      continue;
    }
    auto wf = load_or_report(*path);
    if (!wf) {
      rc = kExitUsage;
      continue;
    }
    std::cout << *path << ": ok (" << wf->name << ", " << wf->steps.size() << " step"
              << (wf->steps.size() == 1 ? "" : "s") << ")\n";
  }
  return rc;
}

int command_run(const Globals& g, const RunArgs& args) {
  std::string repo = resolve_repo(g);
  auto path = resolve_workflow(args.workflow, repo);
  if (!path) {
    std::cerr << path.message() << "\n";
    return kExitUsage;
  }
  auto wf = load_or_report(*path);
  if (!wf) return kExitUsage;
  auto payload = read_payload(args.payload);
  if (!payload) {
    std::cerr << payload.message() << "\n";
    return kExitUsage;
  }
  for (auto& kv : args.inputs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "--input " << kv << ": expected key=value\n";
      return kExitUsage;
    }
    auto v = engine::coerce_input(wf->inputs, kv.substr(0, eq), kv.substr(eq + 1));
    if (!v) {
      std::cerr << v.message() << "\n";
      return kExitUsage;
    }
    (*payload)[kv.substr(0, eq)] = *v;
  }
  auto store = engine::Store::open(resolve_state(g, repo));
  if (!store) {
    std::cerr << store.message() << "\n";
    return kExitRunFailed;
  }
  if (!args.run_id.empty()) {
    auto existing = (*store)->run_exists(args.run_id);
    if (!existing) {
      std::cerr << existing.message() << "\n";
      return kExitRunFailed;
    }
    if (*existing) return rerun_existing(g, **store, args, *wf);
  }
  Session session(**store, args.events == "jsonl");
  engine::RunOptions opts;
  opts.run_id = args.run_id;
  opts.repo = repo;
  opts.payload = std::move(*payload);
  opts.jobs = args.jobs;
  opts.model = model_spec_arg(args.model);
  opts.record = args.record;
  auto started = session.engine().start(*wf, opts, session.on_finished());
  if (!started) {
    std::cerr << started.message() << "\n";
    return kExitUsage;
  }
  return session.wait();
}

}  // namespace hearth::cli
