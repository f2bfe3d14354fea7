// Private to sandbox/: what the engine and hearth-stepbox (the helper of a
// namespace session, stepbox_main.cpp) say over the session's control socket
// (a SOCK_STREAM socketpair; the helper's end is its fd 1 when it starts).
//
//   engine → helper   run     header + body; the command's output pipe (its
//                             write end) rides along as SCM_RIGHTS
//                     signal  header only: `arg` is the signal for the
//                             process group of command `id`
//   helper → engine   exit    header only: command `id` ended, `arg` is its
//                             wait status; its process group has been killed
//
// Body of `run`: n_argv, n_env and n_candidates as three uint32, then
// NUL-terminated strings: cwd, the argv, the env, the candidate paths of
// argv[0] (path_search.h). The helper trusts the engine; the engine trusts
// nothing the helper says (it runs inside the sandbox).
#pragma once

#include <cstdint>

namespace hearth::sandbox::session_protocol {

enum Type : uint32_t { run = 1, signal = 2, exit = 3 };

struct Header {
  uint32_t type = 0;
  uint32_t body_len = 0;
  uint64_t id = 0;
  int32_t arg = 0;
  uint32_t reserved = 0;
};
static_assert(sizeof(Header) == 24);

/// Largest `run` body accepted (argv and env of one command).
inline constexpr uint32_t kMaxBody = 8u << 20;

}  // namespace hearth::sandbox::session_protocol
