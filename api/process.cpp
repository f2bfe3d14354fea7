// hearth::scrub_process_environment (include/hearth/process.h).
#include "hearth/process.h"

#include <sys/prctl.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

namespace hearth {

namespace {

// [env_start, env_end) of this process: fields 50 and 51 of /proc/self/stat
// (proc(5)), counted after the command name, which may hold spaces and ')'.
// Read with one read(2): this runs in every command, before main's work.
bool environment_block(uintptr_t& start, uintptr_t& end) {
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  ssize_t n;
  do n = ::read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  ++p;
  // Field 3 starts after ") "; each field ends at a space (or the line's end).
  for (int field = 3; field <= 51 && *p; ++field) {
    while (*p == ' ') ++p;
    const char* f = p;
    while (*p && *p != ' ' && *p != '\n') ++p;
    if (field == 50) start = std::strtoull(f, nullptr, 10);
    if (field == 51) end = std::strtoull(f, nullptr, 10);
  }
  return start != 0 && end > start;
}

}  // namespace

Status scrub_process_environment() {
  uintptr_t start = 0, end = 0;
  bool located = environment_block(start, end);
  // The copy: the variables in one heap block, listed by a new heap array
  // that becomes `environ` (what clearenv and setenv would have built, with
  // one allocation instead of one per variable and without their search of
  // the whole array per variable). The C library owns both from here on:
  // setenv and unsetenv work on the array, and it never frees a string it did
  // not allocate. A duplicate name keeps its first entry, the one getenv
  // returned before.
  std::size_t count = 0, bytes = 0;
  for (char** e = environ; e && *e; ++e, ++count) bytes += std::strlen(*e) + 1;
  char** copy = static_cast<char**>(std::calloc(count + 1, sizeof(char*)));
  char* block = static_cast<char*>(std::malloc(bytes ? bytes : 1));
  if (!block) {
    std::free(copy);
    copy = nullptr;
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; copy && i < count; ++i) {
    const char* kv = environ[i];
    const char* eq = std::strchr(kv, '=');
    if (!eq || eq == kv) continue;
    std::size_t name_length = static_cast<std::size_t>(eq - kv) + 1;  // with the '='
    bool seen = false;
    for (std::size_t j = 0; j < kept && !seen; ++j)
      seen = copy[j][0] == kv[0] && std::strncmp(copy[j], kv, name_length) == 0;
    if (seen) continue;
    std::size_t length = std::strlen(kv) + 1;
    std::memcpy(block, kv, length);
    copy[kept++] = block;
    block += length;
  }
  if (!located) {
    for (char** e = environ; e && *e; ++e) explicit_bzero(*e, std::strlen(*e));  // at least what is listed
  }
  if (copy) environ = copy;
  else clearenv();  // no memory for a copy: the secrets go, the variables with them
  // Every original string, including those setenv had already replaced.
  if (located) std::memset(reinterpret_cast<void*>(start), 0, end - start);
  int dumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!located)
    return Error{"cannot locate the environment block in /proc/self/stat (is /proc mounted?): only the "
                 "variables still set were zeroed"};
  if (!copy) return Error{"out of memory copying the environment: it was cleared"};
  if (dumpable != 0)
    return Error{std::string("cannot make the process non-dumpable: prctl(PR_SET_DUMPABLE): ") + std::strerror(errno)};
  return {};
}

}  // namespace hearth
