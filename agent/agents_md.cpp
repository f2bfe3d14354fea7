#include "agent/agents_md.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "agent/tool_support.h"

namespace hearth::agent {

Result<std::optional<std::string>> load_agents_md(const Workspace& ws) {
  auto data = detail::read_file(ws, "AGENTS.md", kAgentsMdMaxBytes);
  if (!data) {
    // Missing, a directory, a FIFO or a symlink leading nowhere inside: no guidance.
    int probe = ws.open_at("AGENTS.md", O_PATH);
    if (probe == -ENOENT || probe == -ELOOP || probe == -ENOTDIR) return std::optional<std::string>{};
    if (probe >= 0) {
      ::close(probe);
      if (data.message().find("not a regular file") != std::string::npos ||
          data.message().find("is a directory") != std::string::npos)
        return std::optional<std::string>{};
    }
    return Error{"AGENTS.md: " + data.message()};
  }
  std::string text = *data;
  bool cut = text.size() > kAgentsMdMaxBytes;
  if (cut) text.resize(kAgentsMdMaxBytes);
  text = detail::valid_utf8(text);
  if (cut) text += "\n[AGENTS.md truncated at " + std::to_string(kAgentsMdMaxBytes) + " bytes]\n";
  return std::optional<std::string>{std::move(text)};
}

}  // namespace hearth::agent
