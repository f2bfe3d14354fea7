#include "engine/lease.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>

namespace hearth::engine {

namespace {

std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

// Where a pid of this process means the same process: its pid namespace
// and this boot of the machine. "pidns=<inode> boot=<id>".
std::string pid_scope() {
  struct stat ns{};
  std::string inode = ::stat("/proc/self/ns/pid", &ns) == 0 ? std::to_string(ns.st_ino) : "unknown";
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  return "pidns=" + inode + " boot=" + (boot.empty() ? "unknown" : boot);
}

// A random (version 4) UUID.
std::string random_id() {
  unsigned char bytes[16] = {};
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    // Without the kernel's randomness the pid and the time still tell
    // processes of one scope apart.
    auto t = static_cast<uint64_t>(now_ms()) ^ (static_cast<uint64_t>(getpid()) << 40);
    for (auto& b : bytes) b = static_cast<unsigned char>(t), t = (t >> 8) | (t << 56);
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  std::string out;
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    std::snprintf(hex, sizeof hex, "%02x", bytes[i]);
    out += hex;
  }
  return out;
}

struct Owner {
  pid_t pid = 0;
  std::string host;
  std::string scope;  // "pidns=... boot=..."; empty in an older release's owner
};

// "<pid>@<host>[ pidns=<inode> boot=<id> id=<random>]"
Owner parse(const std::string& owner) {
  Owner o;
  auto at = owner.find('@');
  if (at == std::string::npos) return o;
  o.pid = static_cast<pid_t>(std::atoi(owner.substr(0, at).c_str()));
  auto space = owner.find(' ', at);
  o.host = owner.substr(at + 1, space == std::string::npos ? std::string::npos : space - at - 1);
  if (space != std::string::npos) {
    auto id = owner.find(" id=", space);
    o.scope = owner.substr(space + 1, id == std::string::npos ? std::string::npos : id - space - 1);
  }
  return o;
}

}  // namespace

std::string lease_owner() {
  // Made again in a forked child: it is another process.
  static std::mutex mutex;
  static pid_t made_in = 0;
  static std::string owner;
  std::lock_guard lock(mutex);
  if (made_in != getpid()) {
    made_in = getpid();
    owner = std::to_string(made_in) + "@" + host_name() + " " + pid_scope() + " id=" + random_id();
  }
  return owner;
}

bool owner_gone(const std::string& owner) {
  Owner o = parse(owner);
  if (o.pid <= 0 || o.host != host_name()) return false;  // elsewhere
  if (!o.scope.empty() && o.scope != pid_scope()) return false;  // in another container or boot
  return !(::kill(o.pid, 0) == 0 || errno == EPERM);
}

bool lease_alive(const RunRecord& run, int64_t now, int64_t stale_ms) {
  if (run.lease_owner.empty()) return false;
  if (now - run.lease_heartbeat >= stale_ms) return false;
  return !owner_gone(run.lease_owner);
}

// A store of one machine: the engine's clock, and the test above.
Result<std::string> Store::take_lease(const std::string& run_id, const std::string& owner, int64_t now,
                                      int64_t stale_ms) {
  auto run = load_run(run_id);
  if (!run) return run.error();
  if (run->lease_owner != owner && lease_alive(*run, now, stale_ms)) return run->lease_owner;
  if (auto s = set_lease(run_id, owner, now); !s.ok()) return s.error();
  return std::string();
}

}  // namespace hearth::engine
