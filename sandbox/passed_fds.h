// Private to sandbox/: descriptors passed over a Unix socket (SCM_RIGHTS),
// as the namespace backend's child hands over forwarded ports and the engine
// hands a session's helper each command's output pipe.
#pragma once

#include <sys/socket.h>

#include <cstring>
#include <vector>

namespace hearth::sandbox {

/// Appends to `fds` every descriptor in `msg`'s SCM_RIGHTS messages.
inline void collect_passed_fds(msghdr& msg, std::vector<int>& fds) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
}

}  // namespace hearth::sandbox
