// The workspace as the agent's file tools see it: one directory on the host,
// and nothing outside it. Every open resolves inside the root with
// openat2(2) RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, in one system call, so
// there is no window between a check and the use: `..` stops at the root, a
// symlink is resolved as if the root were `/` (a link to /etc/passwd means
// <root>/etc/passwd), and /proc magic links are refused. On kernels without
// openat2 (before 5.6) a component walk with O_NOFOLLOW is used instead; it
// refuses every symlink.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hearth::agent {

struct WorkspaceOptions {
  /// Where the sandbox mounts the workspace; absolute paths under it name
  /// workspace files (the agent's bash prints those).
  std::string mount = "/workspace";
  /// Use the O_NOFOLLOW walk even when openat2 works (tests of the fallback).
  bool force_walk = false;
  /// Directories under the root (relative paths) the tools must not reach,
  /// however named (a symlink too): the engine's state directory when it
  /// lives in the workspace. Opens inside them fail with EACCES and
  /// glob/grep do not descend into them.
  std::vector<std::string> hidden;
};

/// An open workspace root. Move-only; holds one O_PATH descriptor.
/// Thread-safe for concurrent const use (each call opens its own descriptors).
class Workspace {
 public:
  /// Opens `root` (a directory). Fails when it is not one.
  static Result<Workspace> open(const std::string& root, WorkspaceOptions options = {});
  Workspace(Workspace&& other) noexcept;
  Workspace& operator=(Workspace&& other) noexcept;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace();

  /// A tool's path argument as a clean workspace-relative path ("." for the
  /// root). Relative paths are relative to the root; absolute paths must lie
  /// under the mount point. Refuses paths that climb above the root, absolute
  /// paths elsewhere, empty paths and NUL bytes, naming the path and the rule.
  Result<std::string> relative(std::string_view path) const;

  /// open(2) of `rel` (from relative()) confined to the root. Returns a
  /// descriptor the caller closes, or -errno. O_CLOEXEC is always added.
  int open_at(const std::string& rel, int flags, mode_t mode = 0) const;

  /// Creates the missing directories above `rel` (mode 0755), each inside the root.
  Status make_parents(const std::string& rel) const;

  /// Whether opens go through openat2 (false: the O_NOFOLLOW walk).
  bool uses_openat2() const { return openat2_; }
  const std::string& root() const { return root_; }
  const std::string& mount() const { return options_.mount; }
  /// Whether `rel` (from relative()) is, or lies under, a hidden directory.
  bool hidden(const std::string& rel) const;

 private:
  Workspace(int fd, std::string root, WorkspaceOptions options, bool openat2);
  int walk_open(const std::string& rel, int flags, mode_t mode) const;

  int fd_ = -1;
  std::string root_;
  WorkspaceOptions options_;
  bool openat2_ = false;
};

/// A message for an open that failed with `err` (an errno value) on `rel`.
std::string open_error(const std::string& rel, int err);

}  // namespace hearth::agent
