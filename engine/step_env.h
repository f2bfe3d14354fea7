// The environment a step starts from, before the workflow's `[env]`, the
// step's `env` and the HEARTH_* variables are added (docs/workflow-reference.md,
// "Environment").
//
// A step never inherits the engine's environment: the engine may hold model
// API keys, webhook secrets, tokens of the CI runner, and a step is hostile.
// What it gets is a short allow-list of variables that say where programs,
// the home directory, the locale and the terminal are; none of them is a
// credential.
#pragma once

#include <map>
#include <string>

namespace hearth::engine {

/// The names a step under the local backend takes from the engine's
/// environment (when set there): PATH, HOME, USER, LOGNAME, SHELL, TMPDIR,
/// LANG, LANGUAGE, every LC_*, TERM, TZ, SSL_CERT_FILE, SSL_CERT_DIR.
bool passed_to_local_steps(const std::string& name);

/// The base environment of every step of a run. `isolated` (the namespace
/// sandbox): fixed values that hold inside it (PATH of the sandbox's root,
/// HOME=/home/hearth, LANG=C.UTF-8, TERM=dumb), nothing of the engine's.
/// Otherwise (kind = "local"): the engine's values of the names
/// passed_to_local_steps() accepts, and nothing else.
std::map<std::string, std::string> step_base_env(bool isolated);

}  // namespace hearth::engine
