#include "agent/workspace.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace hearth::agent {
namespace {

constexpr std::uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

long sys_openat2(int dirfd, const char* path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags) | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = kResolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

std::vector<std::string> components(const std::string& rel) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b <= rel.size()) {
    std::size_t e = rel.find('/', b);
    if (e == std::string::npos) e = rel.size();
    std::string c = rel.substr(b, e - b);
    if (!c.empty() && c != ".") out.push_back(c);
    b = e + 1;
  }
  return out;
}

}  // namespace

std::string open_error(const std::string& rel, int err) {
  switch (err) {
    case ENOENT: return "'" + rel + "' does not exist in the workspace";
    case ENOTDIR: return "'" + rel + "': a part of the path is not a directory";
    case EISDIR: return "'" + rel + "' is a directory";
    case ELOOP: return "'" + rel + "' goes through a symlink the workspace does not follow";
    case EXDEV: return "'" + rel + "' leads outside the workspace";
    case EACCES:
    case EPERM: return "'" + rel + "': permission denied";
    default: return "'" + rel + "': " + std::strerror(err);
  }
}

Workspace::Workspace(int fd, std::string root, WorkspaceOptions options, bool openat2)
    : fd_(fd), root_(std::move(root)), options_(std::move(options)), openat2_(openat2) {}

Workspace::Workspace(Workspace&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), root_(std::move(o.root_)), options_(std::move(o.options_)), openat2_(o.openat2_) {}

Workspace& Workspace::operator=(Workspace&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    root_ = std::move(o.root_);
    options_ = std::move(o.options_);
    openat2_ = o.openat2_;
  }
  return *this;
}

Workspace::~Workspace() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Workspace> Workspace::open(const std::string& root, WorkspaceOptions options) {
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{"workspace '" + root + "': " + std::strerror(errno)};
  bool openat2 = false;
  if (!options.force_walk) {
    long probe = sys_openat2(fd, ".", O_PATH | O_DIRECTORY, 0);
    if (probe >= 0) {
      ::close(static_cast<int>(probe));
      openat2 = true;
    }  // ENOSYS (kernel < 5.6) or a seccomp filter that refuses it: use the walk
  }
  return Workspace(fd, root, std::move(options), openat2);
}

Result<std::string> Workspace::relative(std::string_view path) const {
  if (path.empty()) return Error{"path is empty"};
  if (path.find('\0') != std::string_view::npos) return Error{"path contains a NUL byte"};
  std::string p(path);
  if (p[0] == '/') {
    const std::string& m = options_.mount;
    if (p == m || (p.size() > m.size() && p.compare(0, m.size(), m) == 0 && p[m.size()] == '/')) {
      p = p.substr(m.size());
    } else {
      return Error{"'" + p + "' is outside the workspace; use a path relative to the workspace (mounted at " + m +
                   ")"};
    }
  }
  std::vector<std::string> parts;
  for (auto& c : components(p)) {
    if (c == "..") {
      if (parts.empty()) return Error{"'" + std::string(path) + "' leads outside the workspace"};
      parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  if (parts.empty()) return std::string(".");
  std::string out;
  for (auto& c : parts) out += (out.empty() ? "" : "/") + c;
  return out;
}

bool Workspace::hidden(const std::string& rel) const {
  for (auto& h : options_.hidden)
    if (rel == h || (rel.size() > h.size() && rel.compare(0, h.size(), h) == 0 && rel[h.size()] == '/')) return true;
  return false;
}

int Workspace::open_at(const std::string& rel, int flags, mode_t mode) const {
  int fd;
  if (!openat2_) {
    fd = walk_open(rel, flags, mode);
  } else {
    long r;
    do r = sys_openat2(fd_, rel.c_str(), flags, mode);
    while (r < 0 && (errno == EAGAIN || errno == EINTR));  // EAGAIN: a concurrent rename; retry
    fd = r < 0 ? -errno : static_cast<int>(r);
  }
  if (fd < 0 || options_.hidden.empty()) return fd;
  // Where the open really landed (a symlink may have led there).
  auto path_of = [](int d) {
    char target[4096];
    std::string link = "/proc/self/fd/" + std::to_string(d);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
  };
  std::string real = path_of(fd), root = path_of(fd_);
  if (!real.empty() && !root.empty()) {
    if (real.compare(0, root.size(), root) == 0 && (real.size() == root.size() || real[root.size()] == '/') &&
        hidden(real.size() > root.size() ? real.substr(root.size() + 1) : ".")) {
      ::close(fd);
      return -EACCES;
    }
  }
  return fd;
}

int Workspace::walk_open(const std::string& rel, int flags, mode_t mode) const {
  std::vector<std::string> parts = components(rel);
  int dir = ::openat(fd_, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -errno;
  if (parts.empty()) {
    int fd = ::openat(fd_, ".", flags | O_CLOEXEC, mode);
    int err = errno;
    ::close(dir);
    return fd < 0 ? -err : fd;
  }
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "..") { ::close(dir); return -EXDEV; }
    int next = ::openat(dir, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(dir);
    if (next < 0) return -(err == ENOTDIR ? ELOOP : err);  // a symlink to a directory reads as ENOTDIR
    dir = next;
  }
  int fd = ::openat(dir, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int err = errno;
  ::close(dir);
  return fd < 0 ? -err : fd;
}

Status Workspace::make_parents(const std::string& rel) const {
  std::vector<std::string> parts = components(rel);
  std::string prefix;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    std::string parent = prefix.empty() ? "." : prefix;
    prefix += (prefix.empty() ? "" : "/") + parts[i];
    int fd = open_at(prefix, O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      ::close(fd);
      continue;
    }
    if (fd != -ENOENT) return Error{open_error(prefix, -fd)};
    int pfd = open_at(parent, O_PATH | O_DIRECTORY);
    if (pfd < 0) return Error{open_error(parent, -pfd)};
    int rc = ::mkdirat(pfd, parts[i].c_str(), 0755);  // one component, in a directory resolved inside the root
    int err = errno;
    ::close(pfd);
    if (rc != 0 && err != EEXIST) return Error{"cannot create directory '" + prefix + "': " + std::strerror(err)};
  }
  return {};
}

}  // namespace hearth::agent
