#include "sandbox/workspace.h"

#include <git2.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace hearth::sandbox {

namespace {

namespace fs = std::filesystem;

// The marker written last: a workspace directory without it was cut short.
constexpr const char* kMarker = ".hearth-workspace";

struct Git {
  Git() { git_libgit2_init(); }
  ~Git() { git_libgit2_shutdown(); }
};

std::string git_failure(const std::string& what) {
  const ::git_error* e = git_error_last();
  return what + ": " + (e && e->message ? e->message : "unknown libgit2 error");
}

template <class T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p) Free(p);
  }
};

// The marker lives beside the workspace, so steps cannot see or forge it.
fs::path marker_of(const fs::path& dir) { return dir.parent_path() / (dir.filename().string() + kMarker); }

Result<Workspace> read_marker(const fs::path& dir) {
  std::ifstream in(marker_of(dir));
  Workspace w;
  w.path = dir.string();
  std::getline(in, w.commit);
  std::getline(in, w.branch);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) w.read_only.push_back(line);
  return w;
}

Status write_marker(const fs::path& dir, const Workspace& w) {
  fs::path tmp = marker_of(dir).string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << w.commit << "\n" << w.branch << "\n";
    for (auto& p : w.read_only) out << p << "\n";
    if (!out.flush()) return Error{"cannot write " + tmp.string()};
  }
  std::error_code ec;
  fs::rename(tmp, marker_of(dir), ec);
  if (ec) return Error{"cannot write " + marker_of(dir).string() + ": " + ec.message()};
  return {};
}

// The host repository's `origin` URL, or "" when it has none.
std::string origin_url(git_repository* repo) {
  Owned<git_remote, git_remote_free> remote;
  if (git_remote_lookup(&remote.p, repo, "origin") != 0) return {};
  const char* url = git_remote_url(remote.p);
  return url ? url : "";
}

Result<Workspace> checkout(const WorkspaceSpec& spec, const fs::path& dir) {
  Git git;
  std::string where = "workspace checkout of " + spec.repo + (spec.ref.empty() ? "" : " at '" + spec.ref + "'");
  Owned<git_repository, git_repository_free> host;
  if (git_repository_open_ext(&host.p, spec.repo.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    return Error{git_failure(where + ": not a git repository")};
  std::string ref = spec.ref.empty() ? "HEAD" : spec.ref;
  Owned<git_object, git_object_free> target;
  if (git_revparse_single(&target.p, host.p, ref.c_str()) != 0) return Error{git_failure(where + ": unknown ref")};
  Owned<git_commit, git_commit_free> commit;
  if (git_object_peel(reinterpret_cast<git_object**>(&commit.p), target.p, GIT_OBJECT_COMMIT) != 0)
    return Error{git_failure(where + ": the ref is not a commit")};
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, git_commit_id(commit.p));

  // The branch name the step sees: the ref itself when it names a branch.
  std::string branch;
  {
    Owned<git_reference, git_reference_free> r;
    if (git_reference_dwim(&r.p, host.p, ref.c_str()) == 0) {
      Owned<git_reference, git_reference_free> resolved;
      if (git_reference_resolve(&resolved.p, r.p) == 0 && git_reference_is_branch(resolved.p)) {
        const char* name = nullptr;
        if (git_branch_name(&name, resolved.p) == 0 && name) branch = name;
      }
    }
  }

  // A fresh repository, fetching nothing: objects come from the host's
  // object database by an alternates file, then one tree is checked out.
  Owned<git_repository, git_repository_free> ws;
  git_repository_init_options init = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  init.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
  init.template_path = nullptr;  // no hook samples, no templates
  if (git_repository_init_ext(&ws.p, dir.c_str(), &init) != 0) return Error{git_failure(where + ": cannot create the workspace")};
  fs::path host_objects = fs::path(git_repository_path(host.p)) / "objects";
  {
    std::ofstream alt(fs::path(git_repository_path(ws.p)) / "objects" / "info" / "alternates");
    alt << fs::absolute(host_objects).string() << "\n";
  }
  Owned<git_object, git_object_free> ws_commit;
  if (git_object_lookup(&ws_commit.p, ws.p, git_commit_id(commit.p), GIT_OBJECT_COMMIT) != 0)
    return Error{git_failure(where + ": cannot read the commit")};
  git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_tree(ws.p, ws_commit.p, &co) != 0) return Error{git_failure(where + ": checkout failed")};
  if (!branch.empty()) {
    Owned<git_reference, git_reference_free> b;
    if (git_branch_create(&b.p, ws.p, branch.c_str(), reinterpret_cast<git_commit*>(ws_commit.p), 1) != 0)
      return Error{git_failure(where + ": cannot create branch " + branch)};
    if (git_repository_set_head(ws.p, ("refs/heads/" + branch).c_str()) != 0)
      return Error{git_failure(where + ": cannot set HEAD")};
  } else if (git_repository_set_head_detached(ws.p, git_commit_id(commit.p)) != 0) {
    return Error{git_failure(where + ": cannot set HEAD")};
  }
  if (std::string url = origin_url(host.p); !url.empty()) {
    Owned<git_remote, git_remote_free> remote;
    if (git_remote_create(&remote.p, ws.p, "origin", url.c_str()) != 0)
      return Error{git_failure(where + ": cannot record the origin remote")};
  }
  return Workspace{dir.string(), hex, branch, {fs::absolute(host_objects).lexically_normal().string()}};
}

}  // namespace

bool parse_workspace_kind(const std::string& name, WorkspaceKind& out) {
  if (name == "empty") out = WorkspaceKind::empty;
  else if (name == "checkout") out = WorkspaceKind::checkout;
  else if (name == "repo") out = WorkspaceKind::repo;
  else return false;
  return true;
}

const char* to_string(WorkspaceKind kind) {
  switch (kind) {
    case WorkspaceKind::empty: return "empty";
    case WorkspaceKind::checkout: return "checkout";
    case WorkspaceKind::repo: return "repo";
  }
  return "unknown";
}

Result<Workspace> prepare_workspace(const WorkspaceSpec& spec) {
  if (spec.kind == WorkspaceKind::repo) return Workspace{spec.repo, "", "", {}};
  fs::path dir(spec.dir);
  std::error_code ec;
  if (fs::exists(marker_of(dir), ec) && fs::is_directory(dir, ec)) return read_marker(dir);
  fs::remove_all(dir, ec);  // a preparation cut short: start over
  fs::create_directories(dir.parent_path(), ec);
  Workspace w{dir.string(), "", "", {}};
  if (spec.kind == WorkspaceKind::empty) {
    fs::create_directories(dir, ec);
    if (ec) return Error{"cannot create the workspace " + dir.string() + ": " + ec.message()};
  } else {
    auto r = checkout(spec, dir);
    if (!r) {
      fs::remove_all(dir, ec);
      return r.error();
    }
    w = *r;
  }
  if (auto s = write_marker(dir, w); !s.ok()) return s.error();
  return w;
}

}  // namespace hearth::sandbox
