// A step attempt's granted commands (docs/commands.md): what the engine
// prepares so that the commands named in the step's `commands` are callable
// inside its sandbox and nothing else is.
//
//   <state dir>/grants/<run-id>/<step>.<attempt>/   0700, the engine's uid only
//     commands.sock    the broker of this attempt (one socket per attempt:
//                      a connection on it is this step)
//     bin/<name>       a symlink to hearth-shim, one per granted command
//   <state dir>/grants/<run-id>/<step>.<attempt>.private/   0700, never in a sandbox
//     git/             the broker's bare repository for pushes (git_push.h)
//     npmrc.<name>     npm's user configuration with the registry's token
//
// Inside a namespace sandbox the directory is at /run/hearth-grants and the
// shim at /run/hearth-shim; the step's PATH starts with the bin directory.
// Under the local backend the same host paths are used directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands/broker.h"
#include "util/status.h"
#include "workflows/workflow.h"

namespace hearth::engine {

inline constexpr const char* kGrantsInside = "/run/hearth-grants";
inline constexpr const char* kShimInside = "/run/hearth-shim";

/// The hearth-shim program on the host: $HEARTH_SHIM, else beside the
/// running executable, else in the build tree beside it, else where `meson
/// install` put it. Empty when none exists.
std::string find_shim();

/// The name of every secret the workflow uses: its commands' `secrets` and
/// the `${{ secrets.X }}` in its proxies' headers; each once.
std::vector<std::string> secret_names(const workflows::Workflow& wf);

/// The value of each secret a workflow declares, by name.
using SecretValues = std::map<std::string, std::string>;

/// Reads exactly the secrets of secret_names() from the engine's environment
/// (unset or empty ones are absent). A run calls this once, when it starts
/// or resumes; every attempt then takes its secrets from the result, so the
/// values a granted program or a proxy gets are the ones the run redacts.
SecretValues read_declared_secrets(const workflows::Workflow& wf);

/// The redaction set of `values` (those under 4 characters are skipped: they
/// are refused when a step that needs them starts).
std::shared_ptr<const commands::SecretSet> workflow_secrets(const SecretValues& values);

/// Everything one attempt needs, made before its process starts.
struct AttemptGrants {
  std::string dir;      // host directory (see above)
  std::string socket;   // host path of the broker's socket
  std::string bin_dir;  // host path of the shim links
  /// Host directory beside `dir`, never bound into the sandbox (0700): the
  /// broker's own git repository and npm configuration (with the token).
  std::string private_dir;
  commands::BrokerOptions broker;  // without the journal hooks (the run adds them)
};

/// Prepares the grants of `step` for attempt `attempt` (a host-implemented
/// command gets its policy and timeout here, its handler from the caller): resolves each
/// command's program on the engine's PATH, renders its env with `ctx`, takes
/// its secrets from `secrets` (read at run start), builds its policy, and makes
/// the directory with the shim links. `shim_target` is what the links point
/// to (kShimInside, or the host shim for the local backend). Errors name the
/// command and the cause.
Result<AttemptGrants> prepare_grants(const workflows::Workflow& wf, const workflows::Step& step, int attempt,
                                     const std::string& grants_root, const std::string& workspace,
                                     const std::string& shim_target, const nlohmann::json& ctx,
                                     const SecretValues& secrets);

/// The branch checked out in `workspace` (for preset placeholders), or "".
std::string current_branch(const std::string& workspace);

}  // namespace hearth::engine
