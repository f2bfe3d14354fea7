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

std::string random_id() {
  unsigned char bytes[8] = {};
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    // Without the kernel's randomness the pid and the time still tell
    // processes of one scope apart.
    auto t = static_cast<uint64_t>(now_ms()) ^ (static_cast<uint64_t>(getpid()) << 40);
    for (auto& b : bytes) b = static_cast<unsigned char>(t), t >>= 8;
  }
  char hex[17];
  for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
  return hex;
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

bool lease_alive(const RunRecord& run, int64_t now) {
  if (run.lease_owner.empty()) return false;
  if (now - run.lease_heartbeat >= kLeaseStaleMs) return false;
  Owner o = parse(run.lease_owner);
  if (o.pid <= 0 || o.host != host_name()) return true;  // fresh, elsewhere
  if (!o.scope.empty() && o.scope != pid_scope()) return true;  // fresh, in another container or boot
  return ::kill(o.pid, 0) == 0 || errno == EPERM;
}

}  // namespace hearth::engine
