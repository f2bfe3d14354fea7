// `hearth run`.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "session.h"

namespace fs = std::filesystem;

namespace hearth::cli {

namespace {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

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
  // The engine refuses deeper payloads too (the API parses with the same
  // limit); stopping here keeps the CLI from recursing through one first.
  constexpr int kMaxDepth = 512;
  auto bounded = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) throw std::length_error("JSON nests more than " + std::to_string(kMaxDepth) + " levels deep");
    return true;
  };
  try {
    auto j = nlohmann::json::parse(text, bounded);
    if (!j.is_object()) return Error{where + ": the payload must be a JSON object, not " + std::string(j.type_name())};
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    return Error{where + ": invalid JSON: " + e.what()};
  } catch (const std::length_error& e) {
    return Error{where + ": " + e.what()};
  }
}

// Sets each `--input key=value` in `payload`, typed by [inputs], then checks
// the whole payload against [inputs]. Prints every problem, each naming the
// input, the value, the constraint and how to pass it; false if there was one.
bool apply_inputs(const Workflow& wf, const std::vector<std::string>& inputs, nlohmann::json& payload) {
  bool ok = true;
  std::vector<std::string> declared = wf.input_names();
  for (auto& kv : inputs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::string example = eq == std::string::npos && !kv.empty() ? kv : declared.empty() ? "name" : declared[0];
      std::cerr << "--input " << kv << ": expected key=value, like --input " << example << "=...\n";
      ok = false;
      continue;
    }
    std::string key = kv.substr(0, eq);
    if (std::find(declared.begin(), declared.end(), key) == declared.end()) {
      std::cerr << "--input " << kv << ": workflow '" << wf.name() << "' has no input '" << key << "'"
                << did_you_mean(key, declared);
      if (declared.empty()) std::cerr << "; it declares no [inputs] (a value it does not declare can go in --payload)";
      else std::cerr << "; its inputs: " << join(declared, ", ");
      std::cerr << "\n";
      ok = false;
      continue;
    }
    auto v = wf.input_value(key, kv.substr(eq + 1));
    if (!v) {
      std::cerr << v.message() << "\n";
      ok = false;
      continue;
    }
    payload[key] = nlohmann::json::parse(*v);
  }
  if (!ok) return false;
  for (auto& p : wf.input_problems(payload.dump())) {
    ok = false;
    if (p.input.empty()) {
      std::cerr << p.problem << "\n";
      continue;
    }
    std::cerr << wf.path() << ": input '" << p.input << "' "
              << (p.value_json.empty() ? "" : "is " + p.value_json + ", but it ") << p.problem << " (" << p.constraint
              << " in [inputs]); pass it as --input " << p.input << "=...\n";
  }
  return ok;
}

}  // namespace

// Loads and validates; prints every error to stderr.
std::optional<Workflow> load_or_report(const std::string& path) {
  auto loaded = load_workflow(path);
  for (auto& e : loaded.errors) std::cerr << e << "\n";
  return loaded.workflow;
}

int command_run(const Globals& g, const RunArgs& args) {
  std::string repo = resolve_repo(g);
  auto path = find_workflow(repo, args.workflow);
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
  if (!apply_inputs(*wf, args.inputs, *payload)) return kExitUsage;
  auto session = Session::open_for_runs(g, repo, args.events);
  if (!session) return kExitRunFailed;
  Engine& engine = session->engine();
  if (!args.run_id.empty()) {
    auto existing = engine.has_run(args.run_id);
    if (!existing) {
      std::cerr << existing.message() << "\n";
      return kExitRunFailed;
    }
    if (*existing) return rerun_existing(*session, args, *wf);
  }
  StartOptions opts;
  opts.run_id = args.run_id;
  opts.repo = repo;
  opts.payload_json = payload->dump();
  opts.jobs = args.jobs;
  opts.model = model_spec_arg(args.model);
  opts.record = args.record;
  auto started = engine.start(*wf, opts, session->on_finished());
  if (!started) {
    std::cerr << started.message() << "\n";
    return kExitUsage;
  }
  return session->wait();
}

}  // namespace hearth::cli
