#include "sandbox/cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace hearth::sandbox {

namespace {

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool writable_dir(const std::string& dir) {
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::access(dir.c_str(), W_OK) == 0;
}

}  // namespace

Cgroups::Cgroups() {
  // /proc/self/cgroup: "0::/path" for v2, "N:memory:/path" for v1.
  std::istringstream lines(read_text("/proc/self/cgroup"));
  std::string line, v2_path;
  std::map<std::string, std::string> v1;
  while (std::getline(lines, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctrls.empty()) v2_path = path;
    std::istringstream names(ctrls);
    std::string n;
    while (std::getline(names, n, ',')) v1[n] = path;
  }
  for (auto [name, ctrl] : {std::pair{"memory", &memory_}, std::pair{"pids", &pids_}, std::pair{"cpu", &cpu_}}) {
    // v2 first: the controller must be enabled for our cgroup's children.
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      struct statfs sf {};
      if (v2_path.empty() || ::statfs(root, &sf) != 0 || sf.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */) continue;
      std::string base = std::string(root) + v2_path;
      std::string enabled = " " + read_text(base + "/cgroup.subtree_control");
      for (auto& c : enabled) if (c == '\n') c = ' ';
      if (enabled.find(std::string(" ") + name + " ") != std::string::npos && writable_dir(base)) {
        ctrl->base = base;
        ctrl->v2 = true;
      }
    }
    if (ctrl->base.empty() && v1.count(name)) {
      std::string base = std::string("/sys/fs/cgroup/") + name + v1[name];
      if (writable_dir(base)) ctrl->base = base;
    }
  }
  if (memory_.base.empty() && pids_.base.empty() && cpu_.base.empty())
    why_not_ = ::geteuid() == 0 ? "no cgroup controller is available to this process"
                                : "an unprivileged process cannot create cgroups here (no delegated cgroup)";
}

Cgroups::~Cgroups() {
  for (auto& d : leftovers_) ::rmdir(d.c_str());
}

Result<Cgroups::Group> Cgroups::create(const Isolation& iso) {
  for (auto it = leftovers_.begin(); it != leftovers_.end();)
    it = ::rmdir(it->c_str()) == 0 || errno == ENOENT ? leftovers_.erase(it) : it + 1;
  Group g;
  std::string name = "/hearth-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_);
  auto make = [&](Controller& c, const std::vector<std::pair<std::string, std::string>>& settings) -> Status {
    if (c.base.empty()) return {};
    std::string dir = c.base + name;
    bool made = false;
    for (auto& d : g.dirs) made = made || d == dir;  // v2: one directory for every controller
    if (!made) {
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return Error{"cannot create cgroup " + dir + ": " + std::strerror(errno)};
      g.dirs.push_back(dir);
      int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return Error{"cannot open " + dir + "/cgroup.procs: " + std::strerror(errno)};
      g.procs.push_back(fd);
    }
    for (auto& [file, value] : settings)
      if (!write_text(dir + "/" + file, value))
        return Error{"cannot set " + dir + "/" + file + " to " + value + ": " + std::strerror(errno)};
    return {};
  };
  Status s;
  if (iso.memory_bytes) {
    auto v = std::to_string(*iso.memory_bytes);
    if (memory_.v2) s = make(memory_, {{"memory.max", v}, {"memory.swap.max", "0"}});
    else s = make(memory_, {{"memory.limit_in_bytes", v}});
  }
  if (s.ok() && iso.pids) s = make(pids_, {{"pids.max", std::to_string(*iso.pids)}});
  if (s.ok() && iso.cpus) {
    auto quota = std::to_string(static_cast<int64_t>(*iso.cpus * 100000));
    if (cpu_.v2) s = make(cpu_, {{"cpu.max", quota + " 100000"}});
    else s = make(cpu_, {{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", quota}});
  }
  if (!s.ok()) {
    release(g);
    return s.error();
  }
  return g;
}

void Cgroups::release(Group& g) {
  for (int fd : g.procs) ::close(fd);
  g.procs.clear();
  for (auto& d : g.dirs)
    if (::rmdir(d.c_str()) != 0 && errno != ENOENT) leftovers_.push_back(d);
  g.dirs.clear();
}

void Cgroups::remove(Group& g) {
  for (int fd : g.procs) ::close(fd);
  g.procs.clear();
  // The group's processes were killed and its init reaped; the kernel may
  // still count them for a moment.
  for (auto& d : g.dirs)
    for (int tries = 0; tries < 20 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; ++tries) ::usleep(1000);
  g.dirs.clear();
}

std::vector<std::string> Cgroups::warnings(const Isolation& iso) const {
  std::vector<std::string> out;
  std::string why = why_not_.empty() ? "its cgroup controller is not available to this process" : why_not_;
  if (iso.memory_bytes && memory_.base.empty())
    out.push_back("memory limit applies per process (RLIMIT_AS), not to the whole sandbox: " + why);
  if (iso.pids && pids_.base.empty())
    out.push_back("pids limit applies per user (RLIMIT_NPROC in the sandbox's user namespace), not by cgroup: " + why);
  if (iso.cpus && cpu_.base.empty()) out.push_back("cpu limit not applied: " + why);
  return out;
}

}  // namespace hearth::sandbox
