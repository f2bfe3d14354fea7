// Shell commands from tests: one that must succeed, one whose output is
// wanted, and quoting for sh.
#pragma once

#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/test/unit_test.hpp>

namespace hearth::testing {

/// Runs `cmd` with sh, output discarded; the test stops unless it exits 0.
inline void sh(const std::string& cmd) {
  std::string full = cmd + " >/dev/null 2>&1";
  BOOST_REQUIRE_MESSAGE(std::system(full.c_str()) == 0, cmd);
}

/// What `cmd`, run with sh, prints on stdout (its exit status is ignored).
inline std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(p, "cannot run " + cmd);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

/// How a shell command ended and what it printed on stdout.
struct ShellRun {
  int status = -1;  // exit code, or 128 + signal
  std::string out;
};

/// Runs `cmd` with sh to its end (append 2>&1 for stderr too).
inline ShellRun run_shell(const std::string& cmd) {
  ShellRun r;
  FILE* p = popen(cmd.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(p, "cannot run " + cmd);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  BOOST_TEST_MESSAGE(r.out);
  return r;
}

/// What `cmd`, run with sh, prints on stdout, without trailing newlines;
/// the test stops (showing that output) unless it exits 0.
inline std::string sh_output(const std::string& cmd) {
  ShellRun r = run_shell(cmd);
  BOOST_REQUIRE_MESSAGE(r.status == 0, cmd + " failed: " + r.out);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

/// The ordinary host user `hearth-test`, where the tests run as root and it
/// exists (useradd -M hearth-test); otherwise null, with a message: the
/// caller skips its case.
inline const passwd* unprivileged_user() {
  const passwd* pw = getpwnam("hearth-test");
  if (pw && geteuid() == 0) return pw;
  BOOST_TEST_MESSAGE("SKIPPED: needs root and the user hearth-test (useradd -M hearth-test)");
  return nullptr;
}

/// A command-line prefix that runs what follows as `pw`, without groups.
inline std::string as_user(const passwd* pw) {
  return "setpriv --reuid=" + std::to_string(pw->pw_uid) + " --regid=" + std::to_string(pw->pw_gid) +
         " --clear-groups ";
}

/// `s` in single quotes for sh.
inline std::string sh_quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace hearth::testing
