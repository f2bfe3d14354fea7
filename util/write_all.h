// Writing a whole buffer to a descriptor, for code that cannot use libuv:
// the shim, the sandbox's child between clone and exec, the static helpers.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace hearth::util {

/// Writes all `len` bytes of `data` to `fd`, retrying after EINTR and short
/// writes; false on any other failure (errno set, unless the descriptor took
/// nothing). With `to_socket`, sends with MSG_NOSIGNAL, so a peer that has
/// closed is an error here, not a SIGPIPE. Only system calls: safe in a child
/// between clone and exec.
inline bool write_all(int fd, const void* data, size_t len, bool to_socket = false) {
  auto* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = to_socket ? ::send(fd, p, len, MSG_NOSIGNAL) : ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace hearth::util
