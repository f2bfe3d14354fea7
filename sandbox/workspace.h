// Workspaces: the directory a run's steps work in (/workspace inside a
// namespace sandbox). One per run, created when the run starts and kept
// for its steps and across resume.
//
//   empty     a fresh, empty directory
//   checkout  the repository at HEAD (or a ref), checked out with libgit2 from
//             the local repository: a working tree with its own .git whose
//             only remote is the host repository's `origin` URL, and whose
//             objects are read from the host repository's object database
//             (an alternates file: nothing is copied). Nothing of the host
//             repository's .git/config (credential helpers, extra headers,
//             includes), no hooks, no files that are not committed. A
//             sandbox must bind that object database read-only at the same
//             path (Workspace::read_only) for git to work inside.
//   repo      the repository directory itself, read-write (trusted local use)
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

enum class WorkspaceKind { empty, checkout, repo };

/// "empty" | "checkout" | "repo", or nullopt-like failure: returns false for
/// an unknown name.
bool parse_workspace_kind(const std::string& name, WorkspaceKind& out);
const char* to_string(WorkspaceKind kind);

struct WorkspaceSpec {
  WorkspaceKind kind = WorkspaceKind::empty;
  std::string repo;  // the repository on the host (absolute)
  std::string ref;   // checkout: a branch, tag or commit; empty: HEAD
  std::string dir;   // empty and checkout: where the workspace lives (absolute)
};

struct Workspace {
  std::string path;    // the directory to work in (spec.repo for `repo`)
  std::string commit;  // checkout: the commit checked out (hex)
  std::string branch;  // checkout: the branch checked out, empty when detached
  /// Host paths the workspace refers to and a sandbox must show read-only at
  /// the same path (checkout: the host's object database).
  std::vector<std::string> read_only;
};

/// Prepares the workspace, or finds the one prepared before (a resumed run):
/// an existing `dir` holding a finished preparation is reused as it is —
/// steps may have changed it. A preparation cut short by a crash is redone.
/// Errors name the repository, the ref and the cause.
Result<Workspace> prepare_workspace(const WorkspaceSpec& spec);

}  // namespace hearth::sandbox
