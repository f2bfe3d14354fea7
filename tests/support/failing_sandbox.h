// The sandbox seam's twin (sandbox/sandbox.h): the real backend, except that
// chosen calls to spawn() fail as a backend's spawn can (a clone refused, a
// limit hit), returning an error and firing no callback. Everything else —
// sessions, jails, the processes that do start — is the real backend's.
#pragma once

#include <set>
#include <string>

#include "sandbox/sandbox.h"

namespace hearth::testing {

/// The failure message every refused spawn returns.
inline constexpr const char* kInjectedSpawnFailure = "cannot start the command: the test refused this spawn";

class FailingSandbox final : public sandbox::Sandbox {
 public:
  /// Wraps `real` (not owned; must outlive this) and fails its spawn calls
  /// numbered in `failing` (1: the first call).
  FailingSandbox(sandbox::Sandbox& real, std::set<int> failing) : real_(real), failing_(std::move(failing)) {}

  Result<sandbox::Process*> spawn(uv_loop_t* loop, const sandbox::ExecSpec& spec,
                                  sandbox::ExecCallbacks callbacks) override {
    if (failing_.count(++calls_)) return Error{std::string(kInjectedSpawnFailure) + " (call " + std::to_string(calls_) + ")"};
    return real_.spawn(loop, spec, std::move(callbacks));
  }
  Result<std::unique_ptr<sandbox::SandboxSession>> open_session(uv_loop_t* loop, const sandbox::ExecSpec& base) override {
    return real_.open_session(loop, base);
  }
  std::string_view kind() const override { return real_.kind(); }
  std::string_view unavailable() const override { return real_.unavailable(); }
  Result<std::shared_ptr<const sandbox::Jail>> prepare_jail(const sandbox::JailSpec& spec) override {
    return real_.prepare_jail(spec);
  }

  /// spawn() calls so far, the failed ones included.
  int calls() const { return calls_; }

 private:
  sandbox::Sandbox& real_;
  std::set<int> failing_;
  int calls_ = 0;
};

}  // namespace hearth::testing
