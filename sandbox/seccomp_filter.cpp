#include "sandbox/seccomp_filter.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace hearth::sandbox {

namespace {

/// A system call by name, with its number for names libseccomp 2.5 (Debian
/// 12's) may not know; -1: by name only. Numbers from 424 on are the same on
/// every architecture (the kernel's unified table).
struct Call {
  const char* name;
  int nr = -1;
};

// What steps may call: the calls bash, coreutils, git, gcc and make, node and
// npm, python and their C libraries make. Anything else answers ENOSYS, which
// programs treat as "this kernel is too old" and work around. To report a
// call a real program needs, see docs/sandbox.md ("System calls").
constexpr Call kAllowed[] = {
    // Files and directories.
    {"read"}, {"write"}, {"open"}, {"openat"}, {"openat2"}, {"close"}, {"close_range"}, {"creat"},
    {"stat"}, {"fstat"}, {"lstat"}, {"newfstatat"}, {"statx"}, {"statfs"}, {"fstatfs"}, {"lseek"},
    {"pread64"}, {"pwrite64"}, {"readv"}, {"writev"}, {"preadv"}, {"pwritev"}, {"preadv2"}, {"pwritev2"},
    {"access"}, {"faccessat"}, {"faccessat2"}, {"pipe"}, {"pipe2"}, {"dup"}, {"dup2"}, {"dup3"}, {"fcntl"},
    {"flock"}, {"fsync"}, {"fdatasync"}, {"sync"}, {"syncfs"}, {"sync_file_range"}, {"truncate"},
    {"ftruncate"}, {"fallocate"}, {"fadvise64"}, {"readahead"}, {"getdents"}, {"getdents64"}, {"getcwd"},
    {"chdir"}, {"fchdir"}, {"rename"}, {"renameat"}, {"renameat2"}, {"mkdir"}, {"mkdirat"}, {"rmdir"},
    {"link"}, {"linkat"}, {"unlink"}, {"unlinkat"}, {"symlink"}, {"symlinkat"}, {"readlink"},
    {"readlinkat"}, {"chmod"}, {"fchmod"}, {"fchmodat"}, {"fchmodat2", 452}, {"chown"}, {"fchown"},
    {"lchown"}, {"fchownat"}, {"umask"}, {"mknod"}, {"mknodat"}, {"utime"}, {"utimes"}, {"utimensat"},
    {"futimesat"}, {"sendfile"}, {"copy_file_range"}, {"splice"}, {"tee"}, {"vmsplice"}, {"getxattr"},
    {"lgetxattr"}, {"fgetxattr"}, {"setxattr"}, {"lsetxattr"}, {"fsetxattr"}, {"listxattr"},
    {"llistxattr"}, {"flistxattr"}, {"removexattr"}, {"lremovexattr"}, {"fremovexattr"},
    {"inotify_init"}, {"inotify_init1"}, {"inotify_add_watch"}, {"inotify_rm_watch"}, {"memfd_create"},
    {"cachestat", 451},
    // Waiting for events; ioctl (TIOCSTI and TIOCLINUX are denied below).
    {"poll"}, {"ppoll"}, {"select"}, {"pselect6"}, {"epoll_create"}, {"epoll_create1"}, {"epoll_ctl"},
    {"epoll_wait"}, {"epoll_pwait"}, {"epoll_pwait2"}, {"eventfd"}, {"eventfd2"}, {"signalfd"},
    {"signalfd4"}, {"timerfd_create"}, {"timerfd_settime"}, {"timerfd_gettime"}, {"io_setup"},
    {"io_destroy"}, {"io_submit"}, {"io_cancel"}, {"io_getevents"}, {"io_pgetevents"}, {"ioctl"},
    // Memory.
    {"brk"}, {"mmap"}, {"munmap"}, {"mprotect"}, {"mremap"}, {"msync"}, {"mincore"}, {"madvise"},
    {"mlock"}, {"mlock2"}, {"munlock"}, {"mlockall"}, {"munlockall"}, {"membarrier"}, {"pkey_alloc"},
    {"pkey_free"}, {"pkey_mprotect"}, {"remap_file_pages"}, {"get_mempolicy"}, {"set_mempolicy"},
    {"mbind"}, {"map_shadow_stack", 453},
    // Processes and threads (clone's namespace flags and personality's
    // weakening flags are denied below; clone3 is not here: its flags are in
    // memory, out of a filter's reach, and ENOSYS makes the C library use clone).
    {"clone"}, {"fork"}, {"vfork"}, {"execve"}, {"execveat"}, {"exit"}, {"exit_group"}, {"wait4"},
    {"waitid"}, {"kill"}, {"tkill"}, {"tgkill"}, {"pidfd_open"}, {"pidfd_send_signal"}, {"getpid"},
    {"getppid"}, {"gettid"}, {"getpgid"}, {"setpgid"}, {"getpgrp"}, {"getsid"}, {"setsid"}, {"getuid"},
    {"geteuid"}, {"getgid"}, {"getegid"}, {"getresuid"}, {"getresgid"}, {"setuid"}, {"setgid"},
    {"setreuid"}, {"setregid"}, {"setresuid"}, {"setresgid"}, {"setfsuid"}, {"setfsgid"}, {"getgroups"},
    {"setgroups"}, {"capget"}, {"capset"}, {"prctl"}, {"arch_prctl"}, {"set_tid_address"},
    {"set_robust_list"}, {"get_robust_list"}, {"rseq"}, {"getrlimit"}, {"setrlimit"}, {"prlimit64"},
    {"getrusage"}, {"getpriority"}, {"setpriority"}, {"sched_yield"}, {"sched_getaffinity"},
    {"sched_setaffinity"}, {"sched_getparam"}, {"sched_setparam"}, {"sched_getscheduler"},
    {"sched_setscheduler"}, {"sched_get_priority_max"}, {"sched_get_priority_min"},
    {"sched_rr_get_interval"}, {"sched_getattr"}, {"sched_setattr"}, {"ioprio_get"}, {"ioprio_set"},
    {"personality"}, {"seccomp"}, {"landlock_create_ruleset"}, {"landlock_add_rule"},
    {"landlock_restrict_self"}, {"get_thread_area"}, {"set_thread_area"}, {"uname"}, {"sysinfo"},
    {"getcpu"}, {"getrandom"}, {"times"},
    // Signals, time, futexes.
    {"rt_sigaction"}, {"rt_sigprocmask"}, {"rt_sigreturn"}, {"rt_sigsuspend"}, {"rt_sigpending"},
    {"rt_sigtimedwait"}, {"rt_sigqueueinfo"}, {"rt_tgsigqueueinfo"}, {"sigaltstack"}, {"pause"},
    {"restart_syscall"}, {"nanosleep"}, {"clock_nanosleep"}, {"clock_gettime"}, {"clock_getres"},
    {"gettimeofday"}, {"time"}, {"alarm"}, {"getitimer"}, {"setitimer"}, {"timer_create"},
    {"timer_settime"}, {"timer_gettime"}, {"timer_getoverrun"}, {"timer_delete"}, {"futex"},
    {"futex_waitv"}, {"futex_wake", 454}, {"futex_wait", 455}, {"futex_requeue", 456},
    // System V and POSIX IPC (the sandbox's own ipc namespace).
    {"shmget"}, {"shmat"}, {"shmdt"}, {"shmctl"}, {"semget"}, {"semop"}, {"semtimedop"}, {"semctl"},
    {"msgget"}, {"msgsnd"}, {"msgrcv"}, {"msgctl"}, {"mq_open"}, {"mq_unlink"}, {"mq_timedsend"},
    {"mq_timedreceive"}, {"mq_notify"}, {"mq_getsetattr"},
    // Sockets (the sandbox's own network namespace unless network = "host").
    {"socket"}, {"socketpair"}, {"bind"}, {"listen"}, {"accept"}, {"accept4"}, {"connect"},
    {"getsockname"}, {"getpeername"}, {"sendto"}, {"recvfrom"}, {"sendmsg"}, {"recvmsg"}, {"sendmmsg"},
    {"recvmmsg"}, {"setsockopt"}, {"getsockopt"}, {"shutdown"},
#if defined(__x86_64__)
    // Called only by the kernel's return-probe trampoline (a host tracer's).
    {"uretprobe", 335},
#endif
};

// Denied with EPERM: mounting and namespaces (the sandbox is built; nothing
// inside may rebuild it or list the host's mounts), debugging other
// processes, the keyring, eBPF and perf, userfaultfd (a classic exploit
// helper), kernel modules and kexec, reboot and swap, accounting, file
// handles (they bypass the mount tree), io_uring (large attack surface, and
// it bypasses this filter), renaming the sandbox's host.
constexpr Call kDenied[] = {
    {"mount"}, {"umount2"}, {"pivot_root"}, {"chroot"}, {"move_mount"}, {"open_tree"}, {"fsopen"},
    {"fsconfig"}, {"fsmount"}, {"fspick"}, {"mount_setattr"}, {"statmount", 457}, {"listmount", 458},
    {"unshare"}, {"setns"}, {"ptrace"}, {"process_vm_readv"}, {"process_vm_writev"}, {"kcmp"},
    {"pidfd_getfd"}, {"keyctl"}, {"add_key"}, {"request_key"}, {"bpf"}, {"perf_event_open"},
    {"userfaultfd"}, {"kexec_load"}, {"kexec_file_load"}, {"init_module"}, {"finit_module"},
    {"delete_module"}, {"reboot"}, {"swapon"}, {"swapoff"}, {"acct"}, {"open_by_handle_at"},
    {"name_to_handle_at"}, {"io_uring_setup"}, {"io_uring_enter"}, {"io_uring_register"},
    {"lookup_dcookie"}, {"quotactl"}, {"vhangup"}, {"syslog"}, {"uselib"}, {"nfsservctl"},
    {"settimeofday"}, {"clock_settime"}, {"clock_adjtime"}, {"adjtimex"}, {"iopl"}, {"ioperm"},
    {"fanotify_init"}, {"sethostname"}, {"setdomainname"},
};

struct CtxFree {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};
using Ctx = std::unique_ptr<void, CtxFree>;

Status check(int rc, const std::string& what) {
  if (rc == 0) return {};
  return Error{"cannot build the seccomp filter: " + what + ": " + std::strerror(-rc)};
}

Result<int> resolve(const Call& call) {
  int nr = seccomp_syscall_resolve_name(call.name);
  if (nr != __NR_SCMP_ERROR) return nr;
  if (call.nr >= 0) return call.nr;
  return Error{std::string("cannot build the seccomp filter: this libseccomp does not know the system call '") +
               call.name + "' and the filter gives no number for it (sandbox/seccomp_filter.cpp)"};
}

// A context whose calls of another architecture kill the process: i386
// `int 0x80` from a 64-bit process, and x32 numbers (libseccomp's x86_64
// filter sends those to this action too).
Result<Ctx> new_context(uint32_t default_action) {
  Ctx ctx(seccomp_init(default_action));
  if (!ctx) return Error{"cannot create the seccomp filter (libseccomp)"};
  if (auto s = check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action");
      !s.ok())
    return s.error();
  // A binary tree of the numbers rather than a list: a call is found in
  // a few comparisons.
  if (auto s = check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimization"); !s.ok())
    return s.error();
  return ctx;
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx c) {
  int fd = memfd_create("hearth-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Error{std::string("cannot export the seccomp filter: ") + std::strerror(errno)};
  int rc = seccomp_export_bpf(c, fd);
  if (rc != 0) {
    ::close(fd);
    return Error{std::string("cannot export the seccomp filter: ") + std::strerror(-rc)};
  }
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  ssize_t n = pread(fd, prog.data(), static_cast<size_t>(size), 0);
  ::close(fd);
  if (n != size || prog.empty()) return Error{"cannot export the seccomp filter: short read"};
  return prog;
}

Result<std::vector<sock_filter>> build_allow() {
  auto ctx = new_context(SCMP_ACT_ERRNO(ENOSYS));
  if (!ctx) return ctx.error();
  for (const Call& call : kAllowed) {
    auto nr = resolve(call);
    if (!nr) return nr.error();
    if (auto s = check(seccomp_rule_add(ctx->get(), SCMP_ACT_ALLOW, *nr, 0), call.name); !s.ok()) return s.error();
  }
  return export_bpf(ctx->get());
}

Result<std::vector<sock_filter>> build_deny() {
  auto ctx = new_context(SCMP_ACT_ALLOW);
  if (!ctx) return ctx.error();
  scmp_filter_ctx c = ctx->get();
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const Call& call : kDenied) {
    auto nr = resolve(call);
    if (!nr) return nr.error();
    if (auto s = check(seccomp_rule_add(c, eperm, *nr, 0), call.name); !s.ok()) return s.error();
  }
  // clone: only without namespace flags.
  for (uint64_t flag : {uint64_t(CLONE_NEWNS), uint64_t(CLONE_NEWUSER), uint64_t(CLONE_NEWPID), uint64_t(CLONE_NEWNET),
                        uint64_t(CLONE_NEWIPC), uint64_t(CLONE_NEWUTS), uint64_t(CLONE_NEWCGROUP),
                        uint64_t(CLONE_NEWTIME)})
    if (auto s = check(seccomp_rule_add(c, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)), "clone");
        !s.ok())
      return s.error();
  // Personality: no flag that weakens the address space (ASLR off,
  // executable data, page zero). Queries (0xffffffff) have the top bits set.
  // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT,
  // ADDR_LIMIT_3GB, ADDR_LIMIT_32BIT (linux/personality.h).
  for (unsigned long flag : {0x0040000ul, 0x0400000ul, 0x0100000ul, 0x0200000ul, 0x8000000ul, 0x0800000ul})
    if (auto s = check(seccomp_rule_add(c, eperm, SCMP_SYS(personality), 1,
                                        SCMP_A0(SCMP_CMP_MASKED_EQ, 0xf0000000ul | flag, flag)),
                       "personality");
        !s.ok())
      return s.error();
  // Typing into the controlling terminal (TIOCSTI) and the console's
  // TIOCLINUX. The request is an int: compare its low 32 bits.
  for (unsigned long req : {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)})
    if (auto s = check(seccomp_rule_add(c, eperm, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req)),
                       "ioctl");
        !s.ok())
      return s.error();
  return export_bpf(c);
}

}  // namespace

Result<SeccompPrograms> build_seccomp_filter() {
  auto allow = build_allow();
  if (!allow) return allow.error();
  auto deny = build_deny();
  if (!deny) return deny.error();
  return SeccompPrograms{std::move(*allow), std::move(*deny)};
}

}  // namespace hearth::sandbox
