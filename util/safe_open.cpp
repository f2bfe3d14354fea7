#include "util/safe_open.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace hearth {
namespace {

// Deeper trees than this are left in place rather than holding a descriptor
// per level (a step can nest directories without end).
constexpr int kMaxRemoveDepth = 128;

std::string quoted(const std::string& name) { return "'" + name + "'"; }

std::string what_is(mode_t mode) {
  if (S_ISLNK(mode)) return "a symlink";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

// openat2 confined beneath `dir_fd`, refusing every symlink; -errno on failure.
int open_confined(int dir_fd, const std::string& name, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long r;
  do r = syscall(SYS_openat2, dir_fd, name.c_str(), &how, sizeof how);
  while (r < 0 && (errno == EAGAIN || errno == EINTR));
  if (r >= 0) return static_cast<int>(r);
  if (errno != ENOSYS && errno != EPERM) return -errno;
  // No openat2 (before Linux 5.6, or a filter refusing it): one component,
  // O_NOFOLLOW, is as strict.
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") return -EXDEV;
  int fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW, mode);
  return fd >= 0 ? fd : -errno;
}

std::string open_refusal(const std::string& name, int err) {
  switch (err) {
    case ELOOP: return quoted(name) + " is a symlink; it is not followed";
    case EXDEV: return quoted(name) + " leads outside its directory";
    case ENXIO: return quoted(name) + " is a FIFO or socket, not a regular file";
    case EISDIR: return quoted(name) + " is a directory, not a regular file";
    default: return quoted(name) + ": " + std::strerror(err);
  }
}

Status remove_entries(int dir_fd, int depth);

Status remove_at(int dir_fd, const std::string& name, int depth) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR && errno != EPERM) return Error{"cannot remove " + quoted(name) + ": " + std::strerror(errno)};
  if (depth >= kMaxRemoveDepth) return Error{"cannot remove " + quoted(name) + ": nested too deep"};
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open " + quoted(name) + " to remove it: " + std::strerror(errno)};
  Status s = remove_entries(fd, depth + 1);  // takes fd
  if (!s.ok()) return s;
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Error{"cannot remove " + quoted(name) + ": " + std::strerror(errno)};
  return {};
}

// Removes everything in the directory open as `dir_fd`, which it closes.
Status remove_entries(int dir_fd, int depth) {
  DIR* dir = ::fdopendir(dir_fd);
  if (!dir) {
    ::close(dir_fd);
    return Error{std::string("cannot list a directory to remove it: ") + std::strerror(errno)};
  }
  Status s;
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (Status r = remove_at(::dirfd(dir), n, depth); !r.ok() && s.ok()) s = r;
  }
  ::closedir(dir);
  return s;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(std::exchange(o.fd_, -1));
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<UniqueFd> make_fresh_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return Error{"cannot create " + path + ": " + std::strerror(errno)};
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open " + path + ": " + std::strerror(errno)};
  return UniqueFd(fd);
}

Result<UniqueFd> open_regular_beneath(int dir_fd, const std::string& name, int flags, mode_t mode, bool* missing) {
  if (missing) *missing = false;
  int fd = open_confined(dir_fd, name, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode);
  if (fd < 0) {
    if (fd == -ENOENT && missing) *missing = true;
    return Error{open_refusal(name, -fd)};
  }
  UniqueFd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error{"cannot stat " + quoted(name) + ": " + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return Error{quoted(name) + " is " + what_is(st.st_mode) + ", not a regular file"};
  // A hard link would let the file's content be another file's.
  if (st.st_nlink != 1)
    return Error{quoted(name) + " has " + std::to_string(st.st_nlink) + " hard links; only a file of its own is read"};
  return guard;
}

Result<std::optional<std::string>> read_regular_beneath(int dir_fd, const std::string& name, size_t max_bytes) {
  bool missing = false;
  auto fd = open_regular_beneath(dir_fd, name, O_RDONLY, 0, &missing);
  if (!fd) {
    if (missing) return std::optional<std::string>();
    return fd.error();
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot read " + quoted(name) + ": " + std::strerror(errno)};
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return Error{quoted(name) + " is larger than the " + std::to_string(max_bytes) + " bytes allowed"};
    out.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(out));
}

Status remove_beneath(int dir_fd, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return Error{"cannot remove " + quoted(name) + ": not a name in the directory"};
  return remove_at(dir_fd, name, 0);
}

Status remove_tree(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return Error{"cannot open " + parent + ": " + std::strerror(errno)};
  }
  UniqueFd guard(fd);
  Status s = remove_beneath(fd, name);
  if (!s.ok()) return Error{path + ": " + s.message()};
  return {};
}

}  // namespace hearth
