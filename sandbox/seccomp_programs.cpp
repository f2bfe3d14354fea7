// seccomp_programs(): the programs every sandbox of this process installs.
// Where Hearth is built for the machine that builds it, libseccomp compiles
// them then (seccomp_gen.cpp writes seccomp_programs.h), so no process pays
// for the compile (about a millisecond, most of a cold run's sandbox set-up
// in user space); a cross build compiles them at run time, once per process.
// Either way they are build_seccomp_filter()'s output for this libseccomp and
// architecture (the seccomp_filter test compares what a command runs under
// with a fresh compile).
#include <mutex>

#include "sandbox/seccomp_filter.h"

#if HEARTH_SECCOMP_PREBUILT
#include "seccomp_programs.h"  // kPrebuiltAllow, kPrebuiltDeny
#endif

namespace hearth::sandbox {

Result<const SeccompPrograms*> seccomp_programs() {
#if HEARTH_SECCOMP_PREBUILT
  // Never freed: a sandbox's child may be installing them while another
  // thread runs the process's exit.
  static const SeccompPrograms* prebuilt = new SeccompPrograms{
      {std::begin(kPrebuiltAllow), std::end(kPrebuiltAllow)}, {std::begin(kPrebuiltDeny), std::end(kPrebuiltDeny)}};
  return prebuilt;
#else
  static std::mutex mutex;
  static const SeccompPrograms* built = nullptr;  // never freed, as above
  std::lock_guard lock(mutex);
  if (!built) {
    auto fresh = build_seccomp_filter();
    if (!fresh) return fresh.error();
    built = new SeccompPrograms(std::move(*fresh));
  }
  return built;
#endif
}

}  // namespace hearth::sandbox
