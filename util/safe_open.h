// Opening files a hostile party can write, from a directory it cannot replace.
//
// A step (or an agent) can write the files the engine reads back after it
// (its output file, the agent's cwd file): it can replace them with a
// symlink to a host file or to /proc/self/environ, a FIFO that blocks the
// reader, a device, a hard link, or a huge file. Every such file is opened
// here: relative to a directory descriptor the engine opened itself, with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
// (O_NOFOLLOW, one path component only, on kernels without openat2),
// O_NONBLOCK so a FIFO cannot block, and then fstat'ed: only a regular file
// with one link is accepted, and reads stop at a size cap.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

#include "util/status.h"

namespace hearth {

/// An owned file descriptor, closed when this goes. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// Creates the directory `path` afresh (mode `mode`; the parent must exist
/// and belong to the engine) and opens it (O_DIRECTORY | O_NOFOLLOW). Fails
/// when something already exists there: the caller removes leftovers first.
Result<UniqueFd> make_fresh_dir(const std::string& path, mode_t mode);

/// Opens `name` beneath `dir_fd` with `flags` (O_NONBLOCK, O_NOCTTY and
/// O_CLOEXEC are added) without following any symlink, and checks it is a
/// regular file with a single link. `name` may not climb out of the
/// directory ("..", absolute). Errors say what was found ("a symlink", "a
/// FIFO", "2 hard links", ...); a missing file fails with ENOENT in
/// `*missing` set to true when `missing` is given.
Result<UniqueFd> open_regular_beneath(int dir_fd, const std::string& name, int flags, mode_t mode = 0,
                                      bool* missing = nullptr);

/// The content of the regular file `name` beneath `dir_fd`, opened as
/// open_regular_beneath() does; nullopt when it does not exist. A file
/// larger than `max_bytes` is refused with its size and the limit.
Result<std::optional<std::string>> read_regular_beneath(int dir_fd, const std::string& name, size_t max_bytes);

/// Removes `name` beneath `dir_fd` and, if it is a directory, everything in
/// it, never following a symlink (a link is removed, not its target).
/// A missing `name` is not an error.
Status remove_beneath(int dir_fd, const std::string& name);

/// Removes the directory tree at `path` as remove_beneath() does; `path`'s
/// parent is trusted (it belongs to the engine).
Status remove_tree(const std::string& path);

}  // namespace hearth
