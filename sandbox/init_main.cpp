// hearth-init: the init of a one-shot sandbox (docs/sandbox.md,
// "Processes"). The sandbox's first process, once the sandbox is built,
// execs this program through a descriptor the engine opened once:
//
//   hearth-init REPORT_FD N CANDIDATE... ARGV...   (environment: the command's)
//
// From then on pid 1 shares no memory with the engine. It starts the command
// as its child, from its own memory: the leader of a session of its own,
// exec'ing the first of the N candidate paths that runs (like execvp) with
// ARGV and the environment it got. The descriptor REPORT_FD reaches the
// engine, which waits on it: it closes when the command has exec'd (it is
// close-on-exec), or first carries the errno of the failed exec.
//
// A pid namespace's init gets no signal it has no handler for, so this one
// waits for them: SIGTERM, SIGINT and SIGHUP go on to the command's process
// group. It reaps orphans and exits with the command's status (128 + N when
// signal N ended it); the kernel then ends whatever the command left behind.
// Its signals are blocked from the start (the sandbox's child blocked them
// all), so none sent before it runs is lost; the command starts with none
// blocked.
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
constexpr long kENoEnt = 2, kEIntr = 4, kEChild = 10, kEAcces = 13, kENotDir = 20;
constexpr long kFSetFd = 2, kFdCloexec = 1;
constexpr long kSigSetMask = 2;
// CLONE_VM | CLONE_VFORK | SIGCHLD: the command shares this memory until it
// execs, and this process waits for that.
constexpr long kVforkFlags = 0x100 | 0x4000 | kSigChld;

#if defined(__x86_64__)
long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
  long ret;
  register long r10 asm("r10") = d;
  asm volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
// long vfork_call(char* stack_top, void (*fn)(void*), void* arg): runs fn(arg)
// in a child on its own stack (fn must not return), as vfork; returns the
// child's pid, or -errno, once the child has exec'd or exited.
asm(".text\n.globl vfork_call\nvfork_call:\n"
    "  mov %rsi, -8(%rdi)\n"
    "  mov %rdx, -16(%rdi)\n"
    "  lea -16(%rdi), %rsi\n"
    "  mov $0x4111, %edi\n"
    "  xor %edx, %edx\n"
    "  xor %r10, %r10\n"
    "  xor %r8, %r8\n"
    "  mov $56, %eax\n"
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"
    "  mov (%rsp), %rdi\n"
    "  mov 8(%rsp), %rax\n"
    "  call *%rax\n"
    "  hlt\n"
    "1:\n"
    "  ret\n");
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
asm(".text\n.globl vfork_call\nvfork_call:\n"
    "  stp x1, x2, [x0, #-16]!\n"
    "  mov x1, x0\n"
    "  mov x0, #0x4111\n"
    "  mov x2, xzr\n"
    "  mov x3, xzr\n"
    "  mov x4, xzr\n"
    "  mov x8, #220\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  ldp x1, x0, [sp]\n"
    "  mov x29, xzr\n"
    "  mov x30, xzr\n"
    "  blr x1\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n");
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

static_assert(kVforkFlags == 0x4111, "vfork_call's flags");

extern "C" long vfork_call(char* stack_top, void (*fn)(void*), void* arg);

[[noreturn]] void exit_with(long code) {
  for (;;) sys(__NR_exit_group, code);
}

// The decimal number in `s`, or -1.
long parse_number(const char* s) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 4194304) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

struct Command {
  long report_fd;
  char** candidates;  // n_candidates paths of the program
  long n_candidates;
  char** argv;  // null-terminated
  char** envp;
};

// The command, in a child sharing this memory until it execs: a session of
// its own, no signal blocked, the first candidate that runs. A failure is
// reported to the engine as the errno (like execvp: the most telling one).
[[noreturn]] void start_command(void* arg) {
  auto* c = static_cast<Command*>(arg);
  long err = sys(__NR_setsid);
  if (err >= 0) {
    unsigned long none = 0;
    sys(__NR_rt_sigprocmask, kSigSetMask, reinterpret_cast<long>(&none), 0, sizeof none);
    err = -kENoEnt;
    for (long i = 0; i < c->n_candidates; ++i) {
      long rc = sys(__NR_execve, reinterpret_cast<long>(c->candidates[i]), reinterpret_cast<long>(c->argv),
                    reinterpret_cast<long>(c->envp));
      if (rc != -kENoEnt && rc != -kENotDir) err = rc;
      if (rc == -kEAcces || rc == -kENoEnt || rc == -kENotDir) continue;
      err = rc;
      break;
    }
  }
  int code = static_cast<int>(-err);
  sys(__NR_write, c->report_fd, reinterpret_cast<long>(&code), sizeof code);
  exit_with(127);
}

// Waits for signals and children until the command ends; its status.
long supervise(long command) {
  unsigned long waited = 1UL << (kSigChld - 1) | 1UL << (kSigTerm - 1) | 1UL << (kSigInt - 1) | 1UL << (kSigHup - 1);
  for (;;) {
    int status = 0;
    long pid;
    while ((pid = sys(__NR_wait4, -1, reinterpret_cast<long>(&status), kWNoHang, 0)) > 0)
      if (pid == command) {
        int sig = status & 0x7f;
        return sig == 0 ? (status >> 8) & 0xff : 128 + sig;
      }
    if (pid == -kEChild) return 127;
    long sig = sys(__NR_rt_sigtimedwait, reinterpret_cast<long>(&waited), 0, 0, sizeof waited);
    if (sig == -kEIntr) continue;
    if (sig == kSigTerm || sig == kSigInt || sig == kSigHup) sys(__NR_kill, -command, sig);
  }
}

// Blanks the arguments and environment this program got (the command's,
// now copied into it by its exec): /proc/1/cmdline then reads "hearth-init".
void blank_arguments(char** argv, long argc) {
  char* from = argv[1];
  char* to = argv[argc - 1];
  for (char** e = argv + argc + 1; *e; ++e) to = *e;
  while (*to) ++to;
  for (volatile char* c = from; c < to; ++c) *c = 0;
}

alignas(16) char g_command_stack[16 * 1024];

}  // namespace

extern "C" [[noreturn]] void init_start(long* sp) {
  long argc = sp[0];
  auto** argv = reinterpret_cast<char**>(sp + 1);
  Command c{};
  c.report_fd = argc > 3 ? parse_number(argv[1]) : -1;
  c.n_candidates = argc > 3 ? parse_number(argv[2]) : -1;
  if (c.report_fd < 3 || c.n_candidates < 0 || 3 + c.n_candidates >= argc) exit_with(127);  // not the engine's call
  c.candidates = argv + 3;
  c.argv = argv + 3 + c.n_candidates;
  c.envp = argv + argc + 1;
  sys(__NR_prctl, PR_SET_DUMPABLE, 0);
  sys(__NR_prctl, PR_SET_NAME, reinterpret_cast<long>("hearth-init"));
  // The report reaches the engine from here and from the command until it
  // execs, never the program the command runs.
  sys(__NR_fcntl, c.report_fd, kFSetFd, kFdCloexec);
  long command = vfork_call(g_command_stack + sizeof g_command_stack, start_command, &c);
  if (command < 0) {
    int code = static_cast<int>(-command);
    sys(__NR_write, c.report_fd, reinterpret_cast<long>(&code), sizeof code);
  }
  blank_arguments(argv, argc);
  sys(__NR_close, c.report_fd);  // the engine resumes (the command's copy closed at its exec)
  sys(__NR_dup3, 0, 1, 0);       // /dev/null: the output pipe is the command's alone
  sys(__NR_dup3, 0, 2, 0);
  exit_with(command < 0 ? 127 : supervise(command));
}
