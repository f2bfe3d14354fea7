// For servers that write to peers that may have gone (a program that closed
// its stdin, a sandbox that closed its socket): such a write must fail with
// EPIPE, not end the engine.
#pragma once

#include <signal.h>

namespace hearth::util {

/// Sets SIGPIPE to ignored when it still has its default action; a host
/// that handles SIGPIPE itself keeps its handler.
inline void ignore_sigpipe_if_default() {
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
}

}  // namespace hearth::util
