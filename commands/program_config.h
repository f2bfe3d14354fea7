// The configuration a granted gh or npm runs with, decided by the workflow
// and never by what a step can write (docs/commands.md, "Where each program
// gets its configuration"). Pure functions over the program's environment as
// the workflow declares it (rendered), so they can be tested alone.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::commands {

/// The value of `name` in `env` ("NAME=value" entries), compared without
/// case when `any_case`; empty when absent.
std::string env_value(const std::vector<std::string>& env, const std::string& name, bool any_case = false);

/// gh: the host every call goes to is GH_HOST (github.com without it);
/// GH_REPO, when set, must be OWNER/REPO or that host's HOST/OWNER/REPO.
/// The error names the value and the grant's host.
Status check_gh_env(const std::vector<std::string>& env);

/// npm: the user configuration the broker writes for a grant whose registry
/// is NPM_CONFIG_REGISTRY in `env` (https://, or http:// to a loopback host)
/// and whose token is `token` (may be empty: no secret): the registry and the
/// literal token for that registry's host and path only. The token never
/// enters npm's environment, so a project .npmrc's `${NPM_TOKEN}` expands to
/// nothing.
Result<std::string> npm_userconfig(const std::vector<std::string>& env, const std::string& token);

/// npm: `env` with the broker's settings in force: npm_config_userconfig =
/// `userconfig`, npm_config_ignore_scripts = true; any spelling of those
/// names the workflow gave is replaced.
std::vector<std::string> npm_env(std::vector<std::string> env, const std::string& userconfig);

}  // namespace hearth::commands
