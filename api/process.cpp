// hearth::scrub_process_environment (include/hearth/process.h).
#include "hearth/process.h"

#include <sys/prctl.h>

#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace hearth {

namespace {

// [env_start, env_end) of this process: fields 50 and 51 of /proc/self/stat
// (proc(5)), counted after the command name, which may hold spaces and ')'.
bool environment_block(uintptr_t& start, uintptr_t& end) {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  for (int n = 3; n <= 51 && fields >> field; ++n) {
    if (n == 50) start = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 51) end = std::strtoull(field.c_str(), nullptr, 10);
  }
  return start != 0 && end > start;
}

void wipe(std::string& s) {
  explicit_bzero(s.data(), s.size());
  s.clear();
}

}  // namespace

Status scrub_process_environment() {
  uintptr_t start = 0, end = 0;
  bool located = environment_block(start, end);
  // The copy: heap strings, owned by the C library from here on. setenv(…, 0)
  // keeps the first of two duplicates, the one getenv returned before.
  std::vector<std::string> entries;
  for (char** e = environ; e && *e; ++e) entries.emplace_back(*e);
  if (!located) {
    for (char** e = environ; e && *e; ++e) explicit_bzero(*e, std::strlen(*e));  // at least what is listed
  }
  clearenv();
  for (auto& kv : entries) {
    auto eq = kv.find('=');
    if (eq != std::string::npos && eq > 0) {
      kv[eq] = '\0';
      ::setenv(kv.c_str(), kv.c_str() + eq + 1, 0);
    }
    wipe(kv);
  }
  // Every original string, including those setenv had already replaced.
  if (located) std::memset(reinterpret_cast<void*>(start), 0, end - start);
  int dumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!located)
    return Error{"cannot locate the environment block in /proc/self/stat (is /proc mounted?): only the "
                 "variables still set were zeroed"};
  if (dumpable != 0)
    return Error{std::string("cannot make the process non-dumpable: prctl(PR_SET_DUMPABLE): ") + std::strerror(errno)};
  return {};
}

}  // namespace hearth
