// What a program that runs Hearth does to its own process, once, at start.
#pragma once

#include "hearth/export.h"
#include "hearth/status.h"

namespace hearth {

/// Hides the process environment from everything outside the process and
/// keeps it for everything inside: each variable is copied to the heap and
/// set again (getenv, setenv and `environ` keep working on the copy), then
/// the original block the kernel shows as /proc/<pid>/environ is zeroed in
/// place, and the process is made non-dumpable (PR_SET_DUMPABLE 0), so that
/// a process of the same user can neither ptrace it nor read its memory,
/// descriptors or environment through /proc. Secrets the engine is given in
/// its environment (API keys, the tokens of granted commands) then live only
/// in the heap, where `Engine` reads exactly the names a workflow declares.
///
/// REQUIRES: called from main() before any thread starts (getenv and setenv
/// are not safe against concurrent use) and before anything keeps a pointer
/// returned by getenv: such a pointer afterwards points to zeroes.
/// Non-dumpable also makes /proc/self/* owned by root and disables core
/// dumps; `hearth` itself calls this first thing in main().
/// An error (no /proc, so the block could not be located) leaves the
/// environment working and the process non-dumpable; it says what was not done.
HEARTH_API Status scrub_process_environment();

}  // namespace hearth
