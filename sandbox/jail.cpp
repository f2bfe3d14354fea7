// The jail of granted programs (jail.h). Both children below share the
// engine's memory until they exec or exit (CLONE_VM | CLONE_VFORK), so they
// make system calls only, and run with every signal blocked until exec.
#include "sandbox/jail.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/child_setup.h"

namespace hearth::sandbox {

namespace {

constexpr size_t kStack = 64 * 1024;

struct Failure {
  int err = 0;
  const char* what = nullptr;
  const char* path = nullptr;
};

int fail(Failure& f, const char* what, const char* path) {
  f.err = errno;
  f.what = what;
  f.path = path;
  return 127;
}

// Runs `fn(arg)` in a child sharing this memory (and, with CLONE_FILES in
// `flags`, this descriptor table); returns its pid once it has exec'd or
// exited, or -1. Signals stay blocked in the child (see above).
int clone_vfork(int (*fn)(void*), void* arg, int flags, int* pidfd) {
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  auto one_at_a_time = child_setup::one_child_at_a_time();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = ::clone(fn, static_cast<char*>(stack) + kStack, flags | CLONE_VM | CLONE_VFORK | SIGCHLD, arg, pidfd);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  errno = err;
  return pid;
}

// ---- preparing: a child in the new mount namespace builds it, opens it
// into the shared descriptor table, and exits.

struct Placement {
  enum Kind { bind_rw, bind_ro, tmpfs } kind;
  const char* path;
  int mapping;   // bind, as root: the user namespace id-mapping its owner, or -1
  int tree = -1; // bind: the detached copy, taken before anything changes
};

struct PreparePlan {
  std::vector<Placement> places;
  uid_t uid;  // whom the way to each place must be open to
  gid_t gid;
  const char* uid_map = nullptr;  // unprivileged: the jail's own user namespace
  const char* gid_map = nullptr;
  int mntns = -1, userns = -1;    // out
  Failure failure;
  char path[4096];                // scratch for the child
};

int clone_dir(const char* dir) {
  int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW));
  // A directory holding a mount of the parent namespace can only be taken
  // with its submounts (they are locked to it).
  if (tree < 0 && errno == EINVAL)
    tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW | AT_RECURSIVE));
  return tree;
}

int set_attr(int dfd, const char* path, unsigned flags, mount_attr attr) {
  return static_cast<int>(syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof attr));
}

bool searchable(const struct stat& st, uid_t uid, gid_t gid) {
  mode_t bit = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
  return S_ISDIR(st.st_mode) && (st.st_mode & bit);
}

int cover(const char* dir) {
  return ::mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=256");
}

// Makes every directory on the way to `target` (absolute, normal) open to
// the jail's user: one that is not is covered by an empty tmpfs, in which
// the rest of the way is made. The target itself exists afterwards.
int open_way(PreparePlan* p, const char* target) {
  size_t len = std::strlen(target);
  if (len + 1 > sizeof p->path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(p->path, target, len + 1);
  for (size_t i = 1; i <= len; ++i) {
    if (i < len && p->path[i] != '/') continue;
    p->path[i] = 0;
    struct stat st {};
    if (::stat(p->path, &st) != 0) {
      if (errno != ENOENT || ::mkdir(p->path, 0755) != 0) return -1;
    } else if (i < len && !searchable(st, p->uid, p->gid) && cover(p->path) != 0) {
      return -1;
    }
    if (i < len) p->path[i] = '/';
  }
  return 0;
}

int prepare_child(void* arg) noexcept {
  auto* p = static_cast<PreparePlan*>(arg);
  child_setup::default_signals();
  Failure& f = p->failure;
  if (p->uid_map && child_setup::write_id_maps(p->uid_map, p->gid_map) != 0)
    return fail(f, "write", "/proc/self/uid_map and gid_map");
  // Mounts of the host still arrive; nothing made here leaves.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return fail(f, "make slave", "/");
  for (auto& pl : p->places) {
    if (pl.kind == Placement::tmpfs) continue;
    pl.tree = clone_dir(pl.path);
    if (pl.tree < 0) return fail(f, "clone the mount of", pl.path);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (pl.kind == Placement::bind_ro) attr.attr_set |= MOUNT_ATTR_RDONLY;
    else attr.attr_clr = MOUNT_ATTR_RDONLY;
    if (pl.mapping >= 0) {
      attr.attr_set |= MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(pl.mapping);
    }
    if (set_attr(pl.tree, "", AT_EMPTY_PATH, attr) != 0) return fail(f, "id-map", pl.path);
  }
  mount_attr ro{};
  ro.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
  if (set_attr(AT_FDCWD, "/", AT_RECURSIVE, ro) != 0) return fail(f, "make read-only", "/");
  for (auto& pl : p->places) {
    if (open_way(p, pl.path) != 0) return fail(f, "open the way to", pl.path);
    if (pl.kind == Placement::tmpfs) {
      if (cover(pl.path) != 0) return fail(f, "hide", pl.path);
      continue;
    }
    if (syscall(SYS_move_mount, pl.tree, "", AT_FDCWD, pl.path, MOVE_MOUNT_F_EMPTY_PATH) != 0)
      return fail(f, "mount", pl.path);
    ::close(pl.tree);
    pl.tree = -1;
  }
  p->mntns = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (p->mntns < 0) return fail(f, "open", "/proc/self/ns/mnt");
  if (p->uid_map) {
    p->userns = ::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (p->userns < 0) return fail(f, "open", "/proc/self/ns/user");
  }
  return 0;
}

// ---- starting a program: enter the jail, become its user, exec.

struct StartPlan {
  const ProgramStart* start;
  int program_fd;  // the program, opened by the engine; -1: none
  int userns, mntns;
  bool switch_ids;
  uid_t uid;
  gid_t gid;
  Failure failure;
};

int start_child(void* arg) noexcept {
  auto* p = static_cast<StartPlan*>(arg);
  child_setup::default_signals();
  Failure& f = p->failure;
  const ProgramStart& s = *p->start;
  if (child_setup::enter_user_namespace(p->userns) != 0) return fail(f, "enter", "the jail's user namespace");
  if (p->mntns >= 0 && ::setns(p->mntns, CLONE_NEWNS) != 0) return fail(f, "enter", "the jail's mount namespace");
  // In a jail no capability can come back through exec (an engine that is
  // root of a container's user namespace keeps uid 0 here, and uid 0 would
  // regain the whole bounding set at exec, enough to remount the jail
  // read-write); as root, the program also becomes the run's host id.
  if (p->mntns >= 0 && child_setup::drop_privileges({p->switch_ids, p->uid, p->gid}) != 0)
    return fail(f, "drop", "privileges");
  if (child_setup::new_session() != 0) return fail(f, "start", "a session");
  if (child_setup::set_stdio(s.stdio) != 0) return fail(f, "dup2", "stdio");
  // Nothing else reaches the program (program_fd lasts until the exec).
  if (child_setup::close_inherited() != 0) return fail(f, "close", "inherited descriptors");
  if (::chdir(s.cwd) != 0) return fail(f, "chdir", s.cwd);
  if (child_setup::no_new_privs() != 0) return fail(f, "set", "no_new_privs");
  child_setup::unblock_signals();
  ::execve(s.program, s.argv, s.env);
  // The workflow named this program, but the jail's user cannot reach its
  // path (a tool in root's 0700 home): run the file the engine opened. A
  // script's interpreter reads it through /dev/fd, so it stays open.
  if ((errno == EACCES || errno == ENOENT) && p->program_fd >= 0) {
    ::fcntl(p->program_fd, F_SETFD, 0);
    syscall(SYS_execveat, p->program_fd, "", s.argv, s.env, AT_EMPTY_PATH);
  }
  return fail(f, "exec", s.program);
}

std::string describe(const Failure& f) {
  return std::string(f.what) + " " + (f.path ? f.path : "") + ": " + std::strerror(f.err);
}

}  // namespace

std::shared_ptr<const Jail> Jail::host() {
  static const std::shared_ptr<const Jail> none(new Jail());
  return none;
}

Result<std::shared_ptr<const Jail>> Jail::prepare(const JailSpec& spec, std::optional<std::pair<uid_t, gid_t>> id,
                                                  const std::function<Result<int>(uid_t, gid_t)>& mapping_for) {
  const std::string problem = "cannot prepare the jail of granted programs: ";
  PreparePlan plan;
  plan.uid = id ? id->first : ::geteuid();
  plan.gid = id ? id->second : ::getegid();
  auto add = [&](const std::string& dir, Placement::Kind kind) -> Status {
    if (dir.empty() || dir[0] != '/') return Error{problem + "'" + dir + "' is not an absolute path"};
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      if (kind == Placement::bind_ro) return {};  // nothing to read there
      return Error{problem + dir + " is not a directory"};
    }
    int mapping = -1;
    if (id && kind != Placement::tmpfs) {
      auto m = mapping_for(st.st_uid, st.st_gid);
      if (!m) return Error{problem + m.message()};
      mapping = *m;
    }
    plan.places.push_back({kind, dir.c_str(), mapping});
    return {};
  };
  Status s = add(spec.workspace, Placement::bind_rw);
  for (auto& d : spec.read_only)
    if (s.ok()) s = add(d, Placement::bind_ro);
  for (auto& d : spec.hidden)
    if (s.ok()) s = add(d, Placement::tmpfs);
  for (auto& d : spec.writable)
    if (s.ok()) s = add(d, Placement::bind_rw);
  if (!s.ok()) return s.error();
  std::string uid_map, gid_map;
  int flags = CLONE_FILES | CLONE_NEWNS;
  if (!id) {
    uid_map = std::to_string(::geteuid()) + " " + std::to_string(::geteuid()) + " 1\n";
    gid_map = std::to_string(::getegid()) + " " + std::to_string(::getegid()) + " 1\n";
    plan.uid_map = uid_map.c_str();
    plan.gid_map = gid_map.c_str();
    flags |= CLONE_NEWUSER;
  }
  int pid = clone_vfork(prepare_child, &plan, flags, nullptr);
  if (pid < 0) return Error{problem + "cannot create its namespaces: " + std::strerror(errno)};
  int status = 0;
  ::waitpid(pid, &status, __WALL);
  for (auto& pl : plan.places)  // left open by a failure half-way
    if (pl.tree >= 0) ::close(pl.tree);
  std::shared_ptr<Jail> jail(new Jail());
  jail->mntns_fd_ = plan.mntns;  // owned from here, also on failure
  jail->userns_fd_ = plan.userns;
  if (plan.failure.what) return Error{problem + "cannot " + describe(plan.failure)};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || jail->mntns_fd_ < 0)
    return Error{problem + "its helper ended abnormally"};
  jail->switch_ids_ = id.has_value();
  jail->uid_ = plan.uid;
  jail->gid_ = plan.gid;
  return std::shared_ptr<const Jail>(std::move(jail));
}

Jail::~Jail() {
  if (mntns_fd_ >= 0) ::close(mntns_fd_);
  if (userns_fd_ >= 0) ::close(userns_fd_);
}

Result<StartedProgram> Jail::start(const ProgramStart& p) const {
  int program_fd = isolated() ? ::open(p.program, O_RDONLY | O_CLOEXEC) : -1;
  StartPlan plan{&p, program_fd, userns_fd_, mntns_fd_, switch_ids_, uid_, gid_, {}};
  int pidfd = -1;
  int pid = clone_vfork(start_child, &plan, CLONE_PIDFD, &pidfd);
  int err = errno;
  if (program_fd >= 0) ::close(program_fd);
  errno = err;
  if (pid < 0) return Error{std::string("cannot start ") + p.program + ": " + std::strerror(errno)};
  if (plan.failure.what) {
    ::waitpid(pid, nullptr, __WALL);
    ::close(pidfd);
    std::string why = std::string("cannot start ") + p.program + ": cannot " + describe(plan.failure);
    if (plan.failure.err == EACCES && switch_ids_)
      why += " (granted programs run as the run's unprivileged id " + std::to_string(uid_) +
             ": the program must be executable, and a script readable, by others)";
    return Error{why};
  }
  return StartedProgram{pid, pidfd};
}

}  // namespace hearth::sandbox
