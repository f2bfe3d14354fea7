// Where a step's script starts: `working-directory`, which may come from an
// input, confined to the workspace; and the workspace's .hearth, kept a real
// directory so that a sandbox can show it read-only.
#pragma once

#include <string>

#include "util/status.h"

namespace hearth::engine {

/// Resolves `dir` (the rendered `working-directory`, possibly hostile)
/// beneath the host directory `workspace` and returns the host path of the
/// directory. Refused: an absolute path, `..` that leaves the workspace, a
/// symbolic link anywhere on the way (a step may have planted one), anything
/// but an existing directory. Errors name `dir` as given and never a host
/// path. The check is done with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
/// the caller changes directory by the returned path afterwards, so a step
/// running at the same time could still swap a directory for a link in
/// between (inside a namespace sandbox the link then resolves in the sandbox).
Result<std::string> resolve_working_directory(const std::string& workspace, const std::string& dir);

/// Makes sure `<workspace>/.hearth` is a real directory before a sandboxed
/// step starts: created (empty) when missing, so a step cannot create one
/// and plant workflows the next run would load; refused when it is anything
/// else (a symbolic link a step left, a file), with what to do. The sandbox
/// binds it read-only over itself, which a step can neither write through
/// nor rename away.
Status keep_dot_hearth(const std::string& workspace);

}  // namespace hearth::engine
