// The workspace's AGENTS.md: project guidance the harness puts in the agent's
// system prompt (after the built-in preamble, before the skill's body).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "agent/workspace.h"
#include "util/status.h"

namespace hearth::agent {

/// How much of AGENTS.md goes into the system prompt at most.
inline constexpr std::size_t kAgentsMdMaxBytes = 64 * 1024;

/// Reads AGENTS.md at the workspace root, confined like every tool path: a
/// symlink cannot pull a file from outside the workspace into the prompt
/// (which is sent to the model provider). nullopt when there is none (or it
/// is not a regular file). Longer files are cut at kAgentsMdMaxBytes with a
/// marker; invalid UTF-8 becomes U+FFFD. Errors only for unreadable files.
Result<std::optional<std::string>> load_agents_md(const Workspace& ws);

}  // namespace hearth::agent
