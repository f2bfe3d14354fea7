// Sandbox ids and id-mapping user namespaces (idmap.h).
#include "sandbox/idmap.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sandbox/child_setup.h"

namespace hearth::sandbox {

namespace {

std::string slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool parse_u32(const std::string& s, uint32_t& out) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long long v = std::stoull(s);
  if (v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

// The namespace holder: lives in the new user namespace until it is killed.
// It shares the engine's memory, so it touches nothing; every signal but
// SIGKILL stays blocked (the caller blocked them around clone).
int hold(void*) noexcept {
  for (;;) ::pause();
}

}  // namespace

std::optional<std::pair<uint32_t, uint32_t>> find_subordinate_ids(const std::string& text, const std::string& user) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos || line.substr(0, a) != user) continue;
    uint32_t start = 0, count = 0;
    if (!parse_u32(line.substr(a + 1, b - a - 1), start) || !parse_u32(line.substr(b + 1), count) || count == 0 ||
        start == 0 || uint64_t{start} + count > UINT32_MAX)
      continue;
    return std::make_pair(start, count);
  }
  return std::nullopt;
}

bool is_host_root() {
  if (::geteuid() != 0) return false;
  std::istringstream map(slurp("/proc/self/uid_map"));
  uint64_t inside = 1, outside = 1, count = 0;
  map >> inside >> outside >> count;
  return inside == 0 && outside == 0 && count == 4294967295u;  // the initial user namespace's map
}

bool has_sys_admin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

IdRange sandbox_id_range() {
  IdRange r;
  auto u = find_subordinate_ids(slurp("/etc/subuid"), "hearth");
  auto g = find_subordinate_ids(slurp("/etc/subgid"), "hearth");
  if (u && g) {
    r.uid_base = u->first;
    r.gid_base = g->first;
    r.count = std::min(u->second, g->second);
  }
  return r;
}

SandboxIds::SandboxIds(IdRange range) : range_(range) {
  // Engines started side by side begin at different places in the range.
  next_ = static_cast<uint32_t>(::getpid()) * 7919u % range_.count;
}

SandboxIds::~SandboxIds() {
  for (auto& [key, fd] : namespaces_) ::close(fd);
}

HostId SandboxIds::for_workspace(const std::string& workspace) {
  if (namespaces_.size() >= kNamespaces) {
    for (auto& [key, fd] : namespaces_) ::close(fd);
    namespaces_.clear();
  }
  auto it = by_workspace_.find(workspace);
  if (it != by_workspace_.end()) return it->second;
  if (by_workspace_.size() >= kRemembered) by_workspace_.clear();
  uint32_t n = next_++ % range_.count;
  HostId id{range_.uid_base + n, range_.gid_base + n};
  by_workspace_[workspace] = id;
  return id;
}

Result<int> SandboxIds::mapping(HostId owner, HostId id) {
  auto key = std::make_tuple(owner.uid, owner.gid, id.uid, id.gid);
  auto it = namespaces_.find(key);
  if (it != namespaces_.end()) return it->second;
  auto fd = make_mapping_namespace(std::to_string(owner.uid) + " " + std::to_string(id.uid) + " 1\n",
                                   std::to_string(owner.gid) + " " + std::to_string(id.gid) + " 1\n");
  if (!fd) return fd.error();
  namespaces_[key] = *fd;
  return *fd;
}

namespace {

struct HeldStart {
  const char* uid_map;
  const char* gid_map;
  int fd = -1;  // opened by the child, in the table it shares with the caller (CLONE_FILES)
  int err = 0;
};

// In the new user namespace, sharing the engine's memory and descriptors:
// writes its own maps (the engine is not dumpable, so its /proc files are
// not the engine's user's to write from outside) and opens the namespace.
int hold_and_open(void* arg) noexcept {
  auto* h = static_cast<HeldStart*>(arg);
  if (child_setup::write_id_maps(h->uid_map, h->gid_map) != 0 ||
      (h->fd = ::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC)) < 0)
    h->err = errno;
  _exit(0);
}

}  // namespace

Result<int> make_held_user_namespace() {
  std::string uid = std::to_string(::geteuid()), gid = std::to_string(::getegid());
  std::string uid_map = uid + " " + uid + " 1", gid_map = gid + " " + gid + " 1";
  HeldStart h{uid_map.c_str(), gid_map.c_str()};
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return Error{std::string("cannot map a stack for a user namespace: ") + std::strerror(errno)};
  auto one_at_a_time = child_setup::one_child_at_a_time();  // until the holder is gone
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = ::clone(&hold_and_open, static_cast<char*>(stack) + kStack,
                    CLONE_NEWUSER | CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &h);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid >= 0) {
    while (::waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    err = h.err;
  }
  ::munmap(stack, kStack);
  if (pid < 0 || h.fd < 0) {
    if (h.fd >= 0) ::close(h.fd);
    return Error{std::string("cannot make the engine's user namespace: ") + std::strerror(err)};
  }
  return h.fd;
}

Result<int> make_mapping_namespace(const std::string& uid_map, const std::string& gid_map) {
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return Error{std::string("cannot map a stack for a user namespace: ") + std::strerror(errno)};
  auto one_at_a_time = child_setup::one_child_at_a_time();  // until the holder is gone
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = ::clone(&hold, static_cast<char*>(stack) + kStack, CLONE_NEWUSER | CLONE_VM | SIGCHLD, nullptr);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    ::munmap(stack, kStack);
    return Error{std::string("cannot create a user namespace for an id-mapped mount: ") + std::strerror(err)};
  }
  std::string proc = "/proc/" + std::to_string(pid) + "/";
  std::string failed;
  int fd = -1;
  if (!write_text(proc + "uid_map", uid_map)) failed = "write its uid_map";
  else if (!write_text(proc + "gid_map", gid_map)) failed = "write its gid_map";
  else if ((fd = ::open((proc + "ns/user").c_str(), O_RDONLY | O_CLOEXEC)) < 0) failed = "open it";
  err = errno;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, __WALL);
  ::munmap(stack, kStack);  // only now: the holder ran on it
  if (!failed.empty())
    return Error{"cannot prepare the user namespace of an id-mapped mount: " + failed + ": " + std::strerror(err)};
  return fd;
}

}  // namespace hearth::sandbox
