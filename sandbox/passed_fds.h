// Private to sandbox/: descriptors passed over a Unix socket (SCM_RIGHTS),
// as the namespace backend's child hands over forwarded ports and the engine
// hands a session's helper each command's output pipe.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

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

/// One sendmsg() of `data` (`len` bytes) on `socket` with `fd` attached,
/// MSG_NOSIGNAL; returns what sendmsg returns (bytes sent, or -1 with errno
/// set; EINTR is the caller's to retry). Only system calls: safe in a child
/// between clone and exec.
inline ssize_t send_with_fd(int socket, const void* data, size_t len, int fd) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL);
}

}  // namespace hearth::sandbox
