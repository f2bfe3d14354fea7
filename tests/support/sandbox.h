// The namespace sandbox from a test: one shared sandbox, a bash command's
// ExecSpec, a command run to its end on a fresh loop, and a session kept
// open over a loop of its own. Probes exit kWorked when an attack WORKED,
// so a probe that fails to run at all cannot pass.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/test/unit_test.hpp>

#include "sandbox/sandbox.h"
#include "tests/support/loop.h"

namespace hearth::testing {

/// What a probe exits with when the attack it tries worked.
inline constexpr int kWorked = 66;

/// How a sandboxed command ended and what it printed.
struct Exited {
  std::string output;
  sandbox::ExitInfo exit;
  int exits = 0;  // exit notifications received: exactly one is right
};

/// True, with a message, where this host cannot run the namespace sandbox:
/// the caller skips its case.
inline bool without_namespaces() {
  auto problem = sandbox::namespace_support_problem();
  if (!problem.empty()) BOOST_TEST_MESSAGE("skipped: " << problem);
  return !problem.empty();
}

/// One namespace sandbox for the whole test program; the test stops where
/// the host has none.
inline sandbox::Sandbox& namespace_box() {
  static auto made = sandbox::make_namespace_sandbox();
  BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.message()));
  return **made;
}

/// `bash -c script` in /workspace with a minimal environment.
inline sandbox::ExecSpec bash_spec(const std::string& script, sandbox::Isolation iso = {},
                                   std::optional<std::chrono::milliseconds> timeout = {},
                                   std::chrono::milliseconds grace = std::chrono::milliseconds(200)) {
  sandbox::ExecSpec spec;
  spec.argv = {"bash", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin", "HOME=/home/hearth", "LANG=C.UTF-8"};
  spec.cwd = sandbox::kWorkspaceInside;
  spec.isolation = std::move(iso);
  spec.timeout = timeout;
  spec.kill_grace = grace;
  return spec;
}

/// Callbacks that fill `o` in as the command runs. `o` must outlive the command.
inline sandbox::ExecCallbacks filling(Exited& o) {
  return {[&o](std::string_view c) { o.output.append(c); }, [&o](const sandbox::ExitInfo& e) {
            o.exit = e;
            ++o.exits;
          }};
}

/// Spawns `spec` in `box` on a fresh loop and runs the loop until it is
/// empty: one exit, and a loop that closes clean.
inline Exited spawn_to_end(sandbox::Sandbox& box, const sandbox::ExecSpec& spec) {
  Exited o;
  {
    LoopFixture f;
    auto p = box.spawn(&f.loop, spec, filling(o));
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  }
  BOOST_TEST(o.exits == 1);
  BOOST_TEST_MESSAGE(o.output);
  return o;
}

/// One loop and one open session; at scope exit closes the session and
/// checks that the loop ends clean.
struct SessionFixture {
  uv_loop_t loop{};
  std::unique_ptr<sandbox::Sandbox> own_box;  // set when the fixture made its own sandbox
  std::unique_ptr<sandbox::SandboxSession> session;
  bool closed = false;

  /// A session of `box` with `iso` for every command.
  explicit SessionFixture(sandbox::Sandbox& box = namespace_box(), sandbox::Isolation iso = {}) { open(box, iso); }
  /// A session of a sandbox the fixture keeps (made fresh by the caller).
  explicit SessionFixture(std::unique_ptr<sandbox::Sandbox> box) : own_box(std::move(box)) { open(*own_box, {}); }
  ~SessionFixture() {
    if (session) session->close([this] { closed = true; });
    session.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(closed);
    BOOST_TEST(uv_loop_close(&loop) == 0);
  }
  SessionFixture(const SessionFixture&) = delete;
  SessionFixture& operator=(const SessionFixture&) = delete;

  /// Starts `spec`; the outcome fills in as it runs.
  std::shared_ptr<Exited> start(const sandbox::ExecSpec& spec, sandbox::Process** process = nullptr) {
    auto o = std::make_shared<Exited>();
    auto p = session->exec(spec, {[o](std::string_view c) { o->output.append(c); }, [o](const sandbox::ExitInfo& e) {
                                    o->exit = e;
                                    ++o->exits;
                                  }});
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    if (process) *process = *p;
    return o;
  }

  /// Runs `bash -c script` to its end.
  Exited run(const std::string& script, std::optional<std::chrono::milliseconds> timeout = {}) {
    auto o = start(bash_spec(script, {}, timeout));
    run_loop_until(&loop, [&] { return o->exits > 0; });
    BOOST_TEST(o->exits == 1);
    BOOST_TEST_MESSAGE(o->output);
    return *o;
  }

 private:
  void open(sandbox::Sandbox& box, sandbox::Isolation iso) {
    uv_loop_init(&loop);
    sandbox::ExecSpec base;
    base.isolation = std::move(iso);
    auto s = box.open_session(&loop, base);
    BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.message()));
    session = std::move(*s);
  }
};

}  // namespace hearth::testing
