#include "engine/working_directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hearth::engine {

namespace {

// Closes a file descriptor at scope end.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::string> resolve_working_directory(const std::string& workspace, const std::string& dir) {
  const std::string& shown = dir;
  if (dir.empty()) return workspace;
  if (dir.find('\0') != std::string::npos) return Error{shown + " contains a NUL byte"};
  Fd root{::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (root.fd < 0) return Error{"cannot open the workspace: " + std::string(std::strerror(errno))};
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  Fd target{static_cast<int>(::syscall(SYS_openat2, root.fd, dir.c_str(), &how, sizeof how))};
  if (target.fd < 0) {
    switch (errno) {
      case EXDEV: return Error{shown + " is outside the workspace: it must be a relative path that stays inside it"};
      case ELOOP: return Error{shown + " goes through a symbolic link: it must be a real directory in the workspace"};
      case ENOENT: return Error{shown + " is not a directory in the workspace (it does not exist)"};
      case ENOTDIR: return Error{shown + " is not a directory in the workspace"};
      default: return Error{shown + ": " + std::strerror(errno)};
    }
  }
  return (std::filesystem::path(workspace) / std::filesystem::path(dir).lexically_normal()).string();
}

Status keep_dot_hearth(const std::string& workspace) {
  Fd root{::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (root.fd < 0) return Error{"cannot open the workspace: " + std::string(std::strerror(errno))};
  for (int tries = 0; tries < 2; ++tries) {
    struct stat st {};
    if (::fstatat(root.fd, ".hearth", &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISDIR(st.st_mode)) return {};
      return Error{".hearth in the workspace is not a directory (a symbolic link or a file, which a step may have "
                   "left): Hearth keeps .hearth read-only for steps and cannot here; remove it and run again"};
    }
    if (errno != ENOENT) return Error{"cannot look at .hearth in the workspace: " + std::string(std::strerror(errno))};
    if (::mkdirat(root.fd, ".hearth", 0755) == 0) return {};
    if (errno != EEXIST) return Error{"cannot create .hearth in the workspace: " + std::string(std::strerror(errno))};
  }
  return Error{".hearth in the workspace keeps changing"};
}

}  // namespace hearth::engine
