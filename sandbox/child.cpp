// The namespace backend's child, from clone() to execve(). Runs as the init
// of a new pid namespace, inside new user, mount, (net,) ipc, uts and cgroup
// namespaces (as root: the user namespace is a prepared one, entered last,
// and the network namespace one made ahead; unprivileged with the engine's
// held user namespace: cloned inside that one by run_nested_child_plan, its
// own user namespace unshared last). Only system calls: it shares
// the engine's memory until exec (of hearth-init, or a session's helper).
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/child_plan.h"
#include "sandbox/child_setup.h"
#include "sandbox/netns_pool.h"
#include "util/write_all.h"

namespace hearth::sandbox {

namespace {

int fail(ChildPlan* p, const char* what, const char* path) {
  p->failed_errno = errno;
  p->failed_what = what;
  p->failed_path = path;
  return 127;
}

using util::write_all;

bool write_file(const char* path, const char* data, size_t len, int flags, mode_t mode) {
  int fd = ::open(path, flags | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) return false;
  bool ok = write_all(fd, data, len);
  ::close(fd);
  return ok;
}

// A detached copy of the mount at op.a, id-mapped and flagged, then
// attached at op.b (an ordinary bind cannot carry an id mapping).
int idmap_bind(const ChildOp& op) {
  int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, op.a, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree < 0) return -1;
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | op.flags;
  attr.userns_fd = static_cast<uint64_t>(op.fd);
  int rc = static_cast<int>(syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr));
  if (rc == 0) rc = static_cast<int>(syscall(SYS_move_mount, tree, "", AT_FDCWD, op.b, MOVE_MOUNT_F_EMPTY_PATH));
  int err = errno;
  ::close(tree);
  errno = err;
  return rc;
}

// Copies each part of the prepared root into p->root_trees: enters its
// mount namespace, clones each part (recursively, detached), and comes back
// to this child's own mount namespace (which setns makes its root and
// working directory again).
int copy_prepared_root(ChildPlan* p) {
  int self = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -1;
  int rc = ::setns(p->root_ns, CLONE_NEWNS);
  for (size_t i = 0; rc == 0 && i < p->root_parts.size(); ++i) {
    p->root_trees[i] = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, p->root_parts[i],
                                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (p->root_trees[i] < 0) rc = -1;
  }
  int err = errno;
  if (::setns(self, CLONE_NEWNS) != 0) rc = -1;  // the child fails: it is not where it should build
  else errno = err;
  ::close(self);
  return rc;
}

// Mounts the copied part number `index` at `target`.
int attach(ChildPlan* p, size_t index, const char* target) {
  int& tree = p->root_trees[index];
  int rc = static_cast<int>(syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH));
  int err = errno;
  ::close(tree);
  tree = -1;
  errno = err;
  return rc;
}

int run_op(const ChildOp& op) {
  switch (op.kind) {
    case ChildOp::mount_op: return ::mount(op.a, op.b, op.fstype, op.flags, op.data);
    case ChildOp::mkdir_op: return ::mkdir(op.a, static_cast<mode_t>(op.flags)) == 0 || errno == EEXIST ? 0 : -1;
    case ChildOp::symlink_op: return ::symlink(op.a, op.b);
    case ChildOp::touch_op: {
      int fd = ::open(op.a, O_CREAT | O_WRONLY | O_CLOEXEC, static_cast<mode_t>(op.flags));
      if (fd < 0) return -1;
      ::close(fd);
      return 0;
    }
    case ChildOp::write_file_op:
      return write_file(op.a, op.data, op.len, O_CREAT | O_TRUNC, static_cast<mode_t>(op.flags)) ? 0 : -1;
    case ChildOp::pivot_op:
      if (::chdir(op.a) != 0) return -1;
      return static_cast<int>(syscall(SYS_pivot_root, ".", op.b));
    case ChildOp::umount_op: return ::umount2(op.a, MNT_DETACH);
    case ChildOp::rmdir_op: return ::rmdir(op.a);
    case ChildOp::idmap_bind_op: return idmap_bind(op);
    case ChildOp::chown_op: return ::chown(op.a, static_cast<uid_t>(op.flags), static_cast<gid_t>(op.len));
    case ChildOp::attach_op: break;  // needs the plan: run_ops
  }
  return -1;
}

const char* op_name(ChildOp::Kind k) {
  switch (k) {
    case ChildOp::mount_op: return "mount";
    case ChildOp::mkdir_op: return "mkdir";
    case ChildOp::symlink_op: return "symlink";
    case ChildOp::touch_op: return "create";
    case ChildOp::write_file_op: return "write";
    case ChildOp::pivot_op: return "pivot_root";
    case ChildOp::umount_op: return "umount";
    case ChildOp::rmdir_op: return "rmdir";
    case ChildOp::idmap_bind_op: return "id-mapped bind of";
    case ChildOp::chown_op: return "chown";
    case ChildOp::attach_op: return "mount the prepared root's copy at";
  }
  return "?";
}

// Listens on each forwarded loopback address, inside the sandbox's network
// namespace, and sends the sockets to the engine in one message. The
// sockets are close-on-exec here: the command never holds them, so it can
// neither accept on them nor bind their ports.
int listen_forwards(ChildPlan* p) {
  constexpr size_t kMax = 64;  // kMaxForwards in namespace.cpp
  int fds[kMax];
  size_t n = p->listen_addrs.size();
  for (size_t i = 0; i < n; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(p, "listen on", p->listen_names[i]);
    int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(s, reinterpret_cast<const sockaddr*>(&p->listen_addrs[i]), sizeof(sockaddr_in)) != 0 ||
        ::listen(s, 128) != 0)
      return fail(p, "listen on", p->listen_names[i]);
    fds[i] = s;
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)];
  std::memset(control, 0, sizeof control);
  char byte = 'L';
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  std::memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  if (::sendmsg(p->listen_channel, &msg, MSG_NOSIGNAL) != 1) return fail(p, "hand over", "forwarded ports");
  for (size_t i = 0; i < n; ++i) ::close(fds[i]);
  return 0;
}

// Empties every capability set the command could inherit (child_setup.h).
// As root, first enters the sandbox's user namespace (which gives every
// capability in it, bounding set included: hence this order) and becomes
// its user 1000, an unprivileged host id outside; capabilities are not
// cleared by that uid change (0 is not mapped there), so drop_privileges
// empties them. Unprivileged, the child is already 1000 of its own user
// namespace.
// With a held user namespace, the user namespace is made here, last,
// inside the held one (the namespaces made before belong to the held one,
// in which the command then has no capability), and this process writes its
// maps: 1000 inside is the engine's id, as without it.
int drop_capabilities(const ChildPlan* p) {
  if (p->held_userns >= 0 &&
      (::unshare(CLONE_NEWUSER) != 0 || child_setup::write_id_maps(p->uid_map, p->gid_map) != 0))
    return -1;
  if (child_setup::enter_user_namespace(p->userns_fd) != 0) return -1;
  return child_setup::drop_privileges({p->userns_fd >= 0, 1000, 1000, p->last_cap});
}

// Execs the command (exec_fd, or the first candidate that runs, like
// execvp) with the signal mask emptied. Returns only on failure, recorded.
int exec_command(ChildPlan* p) {
  child_setup::unblock_signals();
  if (p->exec_fd >= 0) {
    syscall(SYS_execveat, p->exec_fd, "", p->argv.data(), p->envp.data(), AT_EMPTY_PATH);
    return fail(p, "exec", p->argv[0]);
  }
  int err = ENOENT;
  for (const char* c : p->candidates) {
    ::execve(c, p->argv.data(), p->envp.data());
    if (errno != ENOENT && errno != ENOTDIR) err = errno;  // like execvp: report the interesting error
    if (errno == EACCES || errno == ENOENT || errno == ENOTDIR) continue;
    err = errno;
    break;
  }
  errno = err;
  return fail(p, "exec", p->argv[0]);
}

// Becomes the init: execveat of init_fd with the command in its argv and
// environment (init_main.cpp), which starts the command from its own memory.
// The engine resumes at this exec and waits on report_fd, the init's
// descriptor to it from here on (hence no longer close-on-exec).
int exec_init(ChildPlan* p) {
  if (::fcntl(p->report_fd, F_SETFD, 0) != 0) return fail(p, "pass", "the start report to the init");
  syscall(SYS_execveat, p->init_fd, "", p->init_argv.data(), p->envp.data(), AT_EMPTY_PATH);
  return fail(p, "exec", "the sandbox's init (hearth-init)");
}

}  // namespace

int run_child_plan(void* arg) noexcept {
  auto* p = static_cast<ChildPlan*>(arg);
  // Handlers of the engine must not run here (this memory is the engine's);
  // signals stay blocked (the parent blocked them) until just before exec.
  child_setup::default_signals();

  // Unprivileged: our own uid and gid, as the ordinary user 1000 inside.
  // (As root, or in a held user namespace, the command's user namespace
  // comes last: drop_capabilities.)
  if (p->uid_map && p->held_userns < 0 && child_setup::write_id_maps(p->uid_map, p->gid_map) != 0)
    return fail(p, "write", "/proc/self/uid_map and gid_map");
  // The sandbox dies with the engine (a crashed engine leaves nothing running).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail(p, "set", "parent death signal");
  if (p->netns_fd >= 0 && ::setns(p->netns_fd, CLONE_NEWNET) != 0) return fail(p, "enter", "its network namespace");
  for (int fd : p->cgroup_procs)
    if (!write_all(fd, "0", 1)) return fail(p, "join cgroup", "cgroup.procs");

  if (p->root_ns >= 0 && copy_prepared_root(p) != 0) return fail(p, "copy", "the prepared root");
  for (auto& op : p->ops) {
    int rc = op.kind == ChildOp::attach_op ? attach(p, op.flags, op.b) : run_op(op);
    if (rc != 0) return fail(p, op_name(op.kind), op.b && op.kind != ChildOp::pivot_op ? op.b : op.a);
  }

  if (::sethostname(p->hostname, std::strlen(p->hostname)) != 0) return fail(p, "sethostname", p->hostname);
  if (p->loopback_up && p->netns_fd < 0 && bring_loopback_up() != 0) return fail(p, "bring up", "lo");
  if (!p->listen_addrs.empty() && listen_forwards(p) != 0) return 127;
  if (::chdir(p->cwd) != 0) return fail(p, "chdir", p->cwd);
  for (auto& [resource, limit] : p->rlimits)
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &limit) != 0) return fail(p, "setrlimit", "");

  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail(p, "open", "/dev/null");
  const int stdio[3] = {in, p->out_fd, p->out_fd};
  if (child_setup::set_stdio(stdio) != 0) return fail(p, "dup2", "stdio");
  ::close(in);
  // Nothing else reaches the command (exec_fd and init_fd last until exec).
  if (child_setup::close_inherited() != 0) return fail(p, "close", "inherited descriptors");

  if (child_setup::no_new_privs() != 0) return fail(p, "set", "no_new_privs");
  if (drop_capabilities(p) != 0)
    return fail(p, "drop", p->held_userns >= 0 ? "privileges (into the sandbox's own user namespace)"
                           : p->uid_map        ? "capabilities"
                                               : "privileges (root to the sandbox's user)");
  for (auto& prog : p->seccomp)
    if (prog.len > 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
      return fail(p, "install", "seccomp filter");

  if (p->init_fd >= 0) return exec_init(p);  // its signals stay blocked: it waits for them
  return exec_command(p);
}

namespace {

int inner_child_main(void* plan) noexcept { _exit(run_child_plan(plan)); }

}  // namespace

int run_nested_child_plan(void* arg) noexcept {
  auto* p = static_cast<ChildPlan*>(arg);
  // Every capability of the held namespace (the engine owns it), none
  // outside it; signals stay blocked, as the engine left them.
  if (::setns(p->held_userns, CLONE_NEWUSER) != 0) return fail(p, "enter", "the engine's user namespace");
  // CLONE_PARENT: the engine waits for and watches the sandbox's first
  // process as its own child, and its parent-death signal is the engine's.
  int pid = ::clone(inner_child_main, p->inner_stack, p->inner_flags | CLONE_VM | CLONE_VFORK | CLONE_PARENT, p);
  if (pid < 0) return fail(p, "create", "the sandbox's namespaces in the engine's user namespace");
  p->inner_pid = pid;
  return p->failed_what ? 127 : 0;
}

namespace {

struct PrepareRoot {
  const std::vector<ChildOp>* ops;
  int userns = -1;
  int ns = -1;  // opened by the child, in the table it shares with the caller (CLONE_FILES)
  const ChildOp* failed = nullptr;
  int err = 0;
};

int prepare_root_main(void* arg) noexcept {
  auto* r = static_cast<PrepareRoot*>(arg);
  if (r->userns >= 0 && (::setns(r->userns, CLONE_NEWUSER) != 0 || ::unshare(CLONE_NEWNS) != 0)) {
    r->err = errno;
    _exit(1);
  }
  r->ns = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (r->ns < 0) {
    r->err = errno;
    _exit(1);
  }
  for (auto& op : *r->ops)
    if (run_op(op) != 0) {
      r->failed = &op;
      r->err = errno;
      _exit(1);
    }
  _exit(0);
}

}  // namespace

Result<int> make_prepared_root(const std::vector<ChildOp>& ops, int userns_fd) {
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return Error{std::string("cannot map a stack to prepare the sandbox's root: ") + std::strerror(errno)};
  PrepareRoot r{&ops, userns_fd};
  auto one_at_a_time = child_setup::one_child_at_a_time();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // Shares memory and descriptors until it exits (which CLONE_VFORK waits
  // for); its mount namespace lives on through the descriptor it opened.
  int pid = ::clone(&prepare_root_main, static_cast<char*>(stack) + kStack,
                    (userns_fd >= 0 ? 0 : CLONE_NEWNS) | CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &r);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (pid < 0) return Error{std::string("cannot prepare the sandbox's root: ") + std::strerror(err)};
  int status = 0;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.ns >= 0) return r.ns;
  if (r.ns >= 0) ::close(r.ns);
  std::string what = r.failed ? std::string(op_name(r.failed->kind)) + " " + (r.failed->b ? r.failed->b : r.failed->a)
                              : "enter the engine's user namespace or open its mount namespace";
  return Error{"cannot prepare the sandbox's root: " + what + ": " + std::strerror(r.err)};
}

}  // namespace hearth::sandbox
