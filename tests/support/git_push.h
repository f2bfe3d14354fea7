// A remote for granted pushes and the repository that pushes to it: an
// empty bare `remote.git` served by the real `git http-backend` on
// 127.0.0.1 (tests/support/git_http_server.h) that wants a user and a
// token, the workflow's `[commands.git]` grant for it, and a checkout with
// one commit on main. Shared by the suites that push through the broker.
#pragma once

#include <filesystem>
#include <string>

#include "tests/support/files.h"
#include "tests/support/git_http_server.h"
#include "tests/support/shell.h"

namespace hearth::testing {

class PushRemote {
 public:
  /// Serves `dir`/remote.git (made empty here) to `user` with `token`.
  PushRemote(const std::filesystem::path& dir, std::string user, const std::string& token)
      : git_dir_(init_bare(dir / "remote.git")), user_(std::move(user)), server_(dir, user_, token) {}

  GitHttpServer& server() { return server_; }
  std::string url() const { return server_.url("remote.git"); }
  const std::filesystem::path& git_dir() const { return git_dir_; }

  /// A workflow's `[commands.git]` table granting `git:push` to this remote,
  /// with a credential helper that answers the user and $PUSH_TOKEN (the
  /// grant's secret, which only the broker's git sees).
  std::string grant() const {
    std::string prefix = "http://127.0.0.1:" + std::to_string(server_.port());
    return R"([commands.git]
secrets = ["PUSH_TOKEN"]
preset = "git:push"
remote = ")" + url() + R"("
env = { GIT_CONFIG_COUNT = "1", GIT_CONFIG_KEY_0 = "credential.)" + prefix +
           R"(.helper", GIT_CONFIG_VALUE_0 = "!f() { echo username=)" + user_ +
           R"(; echo password=$PUSH_TOKEN; }; f" }
)";
  }

  /// The subjects of main's commits on the remote, newest first, one a line.
  std::string log() const { return capture("git --git-dir='" + git_dir_.string() + "' log --format=%s main 2>/dev/null"); }

 private:
  static std::filesystem::path init_bare(const std::filesystem::path& path) {
    sh("git init -q --bare -b main '" + path.string() + "'");
    return path;
  }

  std::filesystem::path git_dir_;
  std::string user_;
  GitHttpServer server_;
};

/// Makes `root` a repository with one commit on main ("first") of README
/// (written here) and workflow.toml; with `origin`, a remote of that name.
inline void commit_checkout(const std::filesystem::path& root, const std::string& origin = "") {
  write_file(root / "README", "hello\n");
  sh("cd '" + root.string() + "' && git init -q -b main . && git add README workflow.toml && "
     "git -c user.name=t -c user.email=t@example.com commit -qm first" +
     (origin.empty() ? "" : " && git remote add origin '" + origin + "'"));
}

}  // namespace hearth::testing
