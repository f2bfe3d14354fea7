// Where a granted program may look on the host: the checks the broker makes
// on a call's directory and on every argument that could name a file, before
// the program starts. A granted program runs on the engine's side, where the
// whole host filesystem is visible, so this is the first line; a mount
// namespace around the program is the next.
//
// Every path is judged physically: symlinks resolved (the deepest ancestor
// that exists, for a path to be created), then checked to lie beneath the
// workspace's own physical path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::commands {

/// The call's directory (`cwd`, relative to the workspace as the shim sent it)
/// as a physical host directory beneath `workspace` (itself physical).
Result<std::filesystem::path> resolve_call_dir(const std::string& cwd, const std::filesystem::path& workspace);

/// Checks every argument that could name a file, from `run_dir` (physical):
/// the argument itself, the value of `--opt=value`, and the value joined to
/// a short option (`-F/path`, `-F=/path`, `-qF../x`). An absolute path must
/// lie under /workspace and is rewritten to the same file on the host; a
/// relative one whose first component exists (a link included) or that has a
/// `..` must resolve inside the workspace. The error names the argument.
Status check_path_args(std::vector<std::string>& args, const std::filesystem::path& workspace,
                       const std::filesystem::path& run_dir);

/// The first of `files` found in `run_dir` or a directory above it, up to
/// the workspace's root, relative to the workspace; nullopt when none.
std::optional<std::string> find_config_file(const std::vector<std::string>& files, const std::filesystem::path& workspace,
                                            const std::filesystem::path& run_dir);

}  // namespace hearth::commands
