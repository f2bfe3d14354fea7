// Where a step's script starts: `working-directory`, which may come from an
// input, confined to the workspace.
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

}  // namespace hearth::engine
