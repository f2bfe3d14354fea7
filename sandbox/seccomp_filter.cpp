#include "sandbox/seccomp_filter.h"


#include <sys/ioctl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace hearth::sandbox {

namespace {

// Denied outright: mounting and namespaces (the sandbox is built; nothing
// inside may rebuild it), debugging other processes, the keyring, eBPF and
// perf, userfaultfd (a classic exploit helper), kernel modules and kexec,
// reboot and swap, accounting, file handles (they bypass the mount tree),
// io_uring (large attack surface, and it bypasses this filter).
constexpr const char* kDenied[] = {
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev",
    "kcmp", "pidfd_getfd", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "lookup_dcookie", "quotactl", "vhangup", "syslog", "uselib", "nfsservctl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm", "fanotify_init",
};

struct CtxFree {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};

}  // namespace

Result<std::vector<sock_filter>> build_seccomp_filter() {
  std::unique_ptr<void, CtxFree> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Error{"cannot create the seccomp filter (libseccomp)"};
  scmp_filter_ctx c = ctx.get();
  auto check = [](int rc, const std::string& what) -> Status {
    if (rc == 0) return {};
    return Error{"cannot build the seccomp filter: " + what + ": " + std::strerror(-rc)};
  };
  if (auto s = check(seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action"); !s.ok())
    return s.error();
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (auto s = check(seccomp_rule_add(c, eperm, nr, 0), name); !s.ok()) return s.error();
  }
  // clone: only without namespace flags. clone3 passes its flags in memory
  // a filter cannot read: ENOSYS makes the C library fall back to clone.
  for (uint64_t flag : {uint64_t(CLONE_NEWNS), uint64_t(CLONE_NEWUSER), uint64_t(CLONE_NEWPID), uint64_t(CLONE_NEWNET),
                        uint64_t(CLONE_NEWIPC), uint64_t(CLONE_NEWUTS), uint64_t(CLONE_NEWCGROUP),
                        uint64_t(CLONE_NEWTIME)})
    if (auto s = check(seccomp_rule_add(c, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)), "clone");
        !s.ok())
      return s.error();
  if (auto s = check(seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3"); !s.ok())
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

}  // namespace hearth::sandbox
