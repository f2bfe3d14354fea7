// hearth-init PID: the init of a one-shot sandbox (docs/sandbox.md,
// "Processes"). The sandbox's first process starts the command as its child
// PID (the leader of a session of its own), then execs this program through
// a descriptor the engine opened once; from then on pid 1 shares no memory
// with the engine.
//
// A pid namespace's init gets no signal it has no handler for, so this one
// waits for them: SIGTERM, SIGINT and SIGHUP go on to the command's process
// group. It reaps orphans and exits with the command's status (128 + N when
// signal N ended it); the kernel then ends whatever the command left behind.
// Its signals are blocked from the start (the sandbox's child blocked them
// all), so none sent before it runs is lost.
//
// Freestanding on purpose: no C library, no C++ runtime, no allocation, only
// raw system calls, so its exec and start cost a few page faults (it is
// started once per sandboxed command; glibc's static start-up alone probes
// the CPU with cpuid, which traps to the hypervisor in a VM).
#include <asm/unistd.h>
#include <linux/prctl.h>

namespace {

constexpr long kSigHup = 1, kSigInt = 2, kSigTerm = 15, kSigChld = 17;
constexpr long kWNoHang = 1;
constexpr long kEChild = 10, kEIntr = 4;

#if defined(__x86_64__)
long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
  long ret;
  register long r10 asm("r10") = d;
  asm volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
asm(".text\n.globl _start\n_start:\n"
    "  xor %rbp, %rbp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call init_start\n"
    "  hlt\n");
#elif defined(__aarch64__)
long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
  register long x8 asm("x8") = n;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  asm volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
asm(".text\n.globl _start\n_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  and sp, x0, #-16\n"
    "  bl init_start\n"
    "  brk #0\n");
#else
#error "hearth-init: add the system call convention of this architecture"
#endif

[[noreturn]] void exit_with(long code) {
  for (;;) sys(__NR_exit_group, code);
}

// The decimal pid in `s`, or -1.
long parse_pid(const char* s) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 4194304) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

long run(long command) {
  sys(__NR_prctl, PR_SET_DUMPABLE, 0);
  sys(__NR_prctl, PR_SET_NAME, reinterpret_cast<long>("hearth-init"));
  sys(__NR_dup3, 0, 1, 0);  // /dev/null: the output pipe is the command's alone
  sys(__NR_dup3, 0, 2, 0);
  unsigned long waited = 1UL << (kSigChld - 1) | 1UL << (kSigTerm - 1) | 1UL << (kSigInt - 1) | 1UL << (kSigHup - 1);
  constexpr long kSigBlock = 0;
  sys(__NR_rt_sigprocmask, kSigBlock, reinterpret_cast<long>(&waited), 0, sizeof waited);
  for (;;) {
    int status = 0;
    long pid;
    while ((pid = sys(__NR_wait4, -1, reinterpret_cast<long>(&status), kWNoHang, 0)) > 0)
      if (pid == command) {
        int sig = status & 0x7f;
        return sig == 0 ? (status >> 8) & 0xff : 128 + sig;
      }
    if (pid == -kEChild) return 127;  // not started by the sandbox's child
    long sig = sys(__NR_rt_sigtimedwait, reinterpret_cast<long>(&waited), 0, 0, sizeof waited);
    if (sig == -kEIntr) continue;
    if (sig == kSigTerm || sig == kSigInt || sig == kSigHup) sys(__NR_kill, -command, sig);
  }
}

}  // namespace

extern "C" [[noreturn]] void init_start(long* sp) {
  long argc = sp[0];
  auto** argv = reinterpret_cast<char**>(sp + 1);
  long command = argc == 2 ? parse_pid(argv[1]) : -1;
  if (command <= 1) exit_with(127);
  exit_with(run(command));
}
