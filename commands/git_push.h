// `git push` for a sandboxed step, done by the broker from a git directory
// it owns. Everything in the workspace's .git/ is the step's: its config
// (remote.*.receivepack, core.gitProxy, url.*.insteadOf, credential helpers),
// its hooks, its HEAD (a "branch" named `--receive-pack=...`). So a granted
// push never runs git in the workspace:
//
//   - git runs with GIT_DIR = a bare repository the broker made (one per
//     attempt, outside the workspace), its config written by the broker;
//     system and global config are off (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL
//     = /dev/null); only the workflow's own GIT_CONFIG_* entries add to it;
//   - the workspace's objects are read through GIT_ALTERNATE_OBJECT_DIRECTORIES
//     (objects are data: git hashes what it sends), by way of a view the
//     broker makes of the workspace's object directory: its `pack` and its
//     256 fan-out folders, never its `info` (git reads info/alternates of
//     every alternate and would follow a list the step wrote to another
//     repository on the host). A push is refused when the workspace lists an
//     alternate the engine did not lend it, or any http-alternates;
//   - the object databases the engine lent the workspace (a checkout's host
//     repository) are named by the broker itself;
//   - the branch and its commit are read from the workspace's HEAD and refs as
//     plain files (beneath .git, no symlinks, bounded), the branch name
//     validated by `git check-ref-format --branch` run in the broker's
//     directory, never in the workspace (it would resolve @{-1} there);
//   - the push goes to the URL the workflow names ([commands.<name>] remote),
//     https or ssh, as `git push -- URL COMMIT:refs/heads/BRANCH`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::commands {

/// Where a granted git pushes, fixed by the workflow.
struct GitPushTarget {
  std::string remote_url;  // https://..., ssh://..., or user@host:path (scp form); empty: no push granted
  std::string git_dir;     // the broker's own bare repository for this attempt (host path)
  /// Object directories the engine itself gave the workspace as alternates
  /// (sandbox::Workspace::read_only): the only ones a push reads besides the
  /// workspace's own objects.
  std::vector<std::string> lent_objects;
};

/// Whether `url` may be a push target: https://, ssh:// or scp-like
/// `user@host:path`; http:// only to a loopback host (a stand-in on this
/// machine). Never a local path, file://, or a transport helper (`ext::`).
/// The error says why.
Status check_remote_url(const std::string& url);

/// Creates the broker's bare repository at `dir` (must not exist) with a
/// config the broker writes: no hooks, no helpers.
Status make_push_git_dir(const std::string& dir);

/// The branch checked out in the workspace (`workspace/.git/HEAD`), read as a
/// file beneath the workspace without following links: "" when HEAD is
/// detached, an error when it cannot be read or names no valid branch.
/// `git` is the program used to validate the name; it runs in `safe_dir`.
Result<std::string> workspace_branch(const std::string& workspace, const std::string& git, const std::string& safe_dir);

/// Whether `name` is a valid branch name, by `git check-ref-format --branch`
/// run in `safe_dir` (never in the workspace). Names starting with '-' or
/// holding "@{" are refused before git is asked.
Status check_branch_name(const std::string& name, const std::string& git, const std::string& safe_dir);

/// A push the broker runs instead of the call.
struct PushPlan {
  std::vector<std::string> argv;  // argv[0] = "git"
  std::vector<std::string> env;   // the program's complete environment
  std::string cwd;                // the broker's git directory
};

/// Turns an allowed `git push ...` call (`args` without the program name)
/// into the push the broker runs: `[-u|--set-upstream|-q|--quiet|-n|--dry-run]
/// origin [REFSPEC...]`, where `origin` (or the URL itself) stands for the
/// target, and each REFSPEC is SRC[:DST] with SRC `HEAD` or a branch and DST
/// a branch or refs/heads/BRANCH (none: the current branch). `env` is the
/// command's environment (the workflow's); `git` its program.
Result<PushPlan> plan_push(const std::vector<std::string>& args, const std::string& workspace,
                           const GitPushTarget& target, const std::string& git, std::vector<std::string> env);

}  // namespace hearth::commands
