// The sandbox's root: a tmpfs holding read-only binds of the host's system
// directories, a trimmed /etc written fresh, a new /proc, a minimal /dev,
// tmpfs /tmp and home, and the workspace. Built after pivoting into the
// tmpfs with the host's root at /oldroot (so binds of paths under the host's
// /tmp still resolve), which is detached at the end.
#include "sandbox/mounts.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>

namespace hearth::sandbox {

namespace {

constexpr const char* kOld = "/oldroot";

const char* kPasswd =
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "hearth:x:1000:1000:Hearth sandbox:/home/hearth:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const char* kGroup = "root:x:0:\nhearth:x:1000:\nnogroup:x:65534:\n";

// /proc entries that write host kernel settings or trigger host actions:
// read-only binds of themselves, as container runtimes do. Writes need
// host root anyway (the command never is); this holds if that changes.
constexpr const char* kProcReadOnly[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
// /proc files that tell about the host's kernel, memory or keys: /dev/null
// bound over them (they read empty).
constexpr const char* kProcMasked[] = {"kcore", "keys", "timer_list", "sched_debug"};
const char* kHosts = "127.0.0.1 localhost hearth\n::1 localhost ip6-localhost ip6-loopback\n";
const char* kNsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return "";
  return buf;
}

}  // namespace

RootTemplate::RootTemplate() {
  // Into a fresh tmpfs, the host's root kept at /oldroot until the end.
  prefix_.push_back({ChildOp::mount_op, nullptr, "/", nullptr, MS_REC | MS_PRIVATE});
  prefix_.push_back({ChildOp::mount_op, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m"});
  prefix_.push_back({ChildOp::mkdir_op, "/tmp/oldroot", nullptr, nullptr, 0755});
  prefix_.push_back({ChildOp::pivot_op, "/tmp", "oldroot"});
  // The host's system directories: binds (the parts a prepared root
  // copies, tops_) or the same symlinks.
  for (const char* name : {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"})
    if (const char* top = add_host_entry(std::string("/") + name, links_, system_, true)) tops_.push_back(top);
  // /etc: the sandbox's own few files and read-only binds of the host's.
  auto& e = etc_;
  e.push_back({ChildOp::write_file_op, "/etc/passwd", nullptr, nullptr, 0644, kPasswd, std::strlen(kPasswd)});
  e.push_back({ChildOp::write_file_op, "/etc/group", nullptr, nullptr, 0644, kGroup, std::strlen(kGroup)});
  e.push_back({ChildOp::write_file_op, "/etc/hosts", nullptr, nullptr, 0644, kHosts, std::strlen(kHosts)});
  e.push_back({ChildOp::write_file_op, "/etc/hostname", nullptr, nullptr, 0644, "hearth\n", 7});
  e.push_back({ChildOp::write_file_op, "/etc/nsswitch.conf", nullptr, nullptr, 0644, kNsswitch, std::strlen(kNsswitch)});
  for (const char* name : {"ssl", "ca-certificates", "alternatives", "ld.so.cache", "localtime", "os-release",
                           "mime.types", "protocols", "services"})
    add_host_entry(std::string("/etc/") + name, etc_, etc_, false);
  // A minimal /dev: the harmless devices, mount points for a private devpts
  // and its own shm (mounted per sandbox), the usual links.
  auto& d = dev_;
  for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string host = std::string("/dev/") + dev;
    struct stat st {};
    if (::stat(host.c_str(), &st) != 0) continue;
    const char* inside = keep(host);
    d.push_back({ChildOp::touch_op, inside, nullptr, nullptr, 0666});
    d.push_back({ChildOp::mount_op, keep(kOld + host), inside, nullptr, MS_BIND});
  }
  d.push_back({ChildOp::mkdir_op, "/dev/pts", nullptr, nullptr, 0755});
  d.push_back({ChildOp::symlink_op, "pts/ptmx", "/dev/ptmx"});
  d.push_back({ChildOp::mkdir_op, "/dev/shm", nullptr, nullptr, 01777});
  d.push_back({ChildOp::symlink_op, "/proc/self/fd", "/dev/fd"});
  d.push_back({ChildOp::symlink_op, "/proc/self/fd/0", "/dev/stdin"});
  d.push_back({ChildOp::symlink_op, "/proc/self/fd/1", "/dev/stdout"});
  d.push_back({ChildOp::symlink_op, "/proc/self/fd/2", "/dev/stderr"});

  // What each sandbox needs of its own: a fresh /proc of its pid namespace
  // (the host's processes are not in it), devpts, shm, scratch directories.
  auto& o = own_;
  o.push_back({ChildOp::mkdir_op, "/proc", nullptr, nullptr, 0555});
  o.push_back({ChildOp::mount_op, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC});
  o.push_back({ChildOp::mount_op, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=620"});
  o.push_back({ChildOp::mount_op, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m"});
  add_proc_protection();
  o.push_back({ChildOp::mkdir_op, "/tmp", nullptr, nullptr, 01777});
  o.push_back({ChildOp::mount_op, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=512m"});
  o.push_back({ChildOp::mkdir_op, "/home", nullptr, nullptr, 0755});
  o.push_back({ChildOp::mkdir_op, "/home/hearth", nullptr, nullptr, 0755});
  o.push_back({ChildOp::mkdir_op, kWorkspaceInside, nullptr, nullptr, 0755});

  // Built in place (unprivileged, or where no prepared root could be made).
  auto& h = head_;
  h = prefix_;
  h.insert(h.end(), links_.begin(), links_.end());
  h.insert(h.end(), system_.begin(), system_.end());
  h.push_back({ChildOp::mkdir_op, "/etc", nullptr, nullptr, 0755});
  h.insert(h.end(), etc_.begin(), etc_.end());
  h.push_back({ChildOp::mkdir_op, "/dev", nullptr, nullptr, 0755});
  h.push_back({ChildOp::mount_op, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"});
  h.insert(h.end(), dev_.begin(), dev_.end());
  h.insert(h.end(), own_.begin(), own_.end());

  // After the per-spawn ops: forget the host, freeze the root.
  auto& t = tail_;
  t.push_back({ChildOp::umount_op, kOld});
  t.push_back({ChildOp::rmdir_op, kOld});
  t.push_back({ChildOp::mount_op, nullptr, "/dev", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC});
  t.push_back({ChildOp::mount_op, nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV});

  resolv_conf_ = real("/etc/resolv.conf");
}

std::vector<ChildOp> RootTemplate::prepared_root_ops(bool resolv_conf_mount_point) {
  // Each top-level mount is what a sandbox copies: /etc and /dev become
  // tmpfs of their own here (in a root built in place they are directories
  // of its root), and all of it read-only before any sandbox sees it.
  std::vector<ChildOp> ops = prefix_;
  ops.insert(ops.end(), system_.begin(), system_.end());
  ops.push_back({ChildOp::mkdir_op, "/etc", nullptr, nullptr, 0755});
  ops.push_back({ChildOp::mount_op, "tmpfs", "/etc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m"});
  ops.insert(ops.end(), etc_.begin(), etc_.end());
  if (resolv_conf_mount_point) ops.push_back({ChildOp::touch_op, "/etc/resolv.conf", nullptr, nullptr, 0644});
  ops.push_back({ChildOp::mkdir_op, "/dev", nullptr, nullptr, 0755});
  ops.push_back({ChildOp::mount_op, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"});
  ops.insert(ops.end(), dev_.begin(), dev_.end());
  ops.push_back({ChildOp::mount_op, nullptr, "/etc", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC});
  ops.push_back({ChildOp::mount_op, nullptr, "/dev", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC});
  ops.push_back({ChildOp::umount_op, kOld});
  ops.push_back({ChildOp::rmdir_op, kOld});
  return ops;
}

unsigned long RootTemplate::locked_flags(const std::string& host) {
  auto it = flags_cache_.find(host);
  if (it != flags_cache_.end()) return it->second;
  // A remount inside a user namespace must keep the flags the host locked
  // on the source's mount, or it fails with EPERM.
  struct statvfs sv {};
  unsigned long f = 0;
  if (::statvfs(host.c_str(), &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  }
  flags_cache_[host] = f;
  return f;
}

void RootTemplate::add_proc_protection() {
  for (const char* name : kProcReadOnly) {
    std::string path = std::string("/proc/") + name;
    if (::access(path.c_str(), F_OK) != 0) continue;
    const char* p = keep(path);
    own_.push_back({ChildOp::mount_op, p, p, nullptr, MS_BIND});
    own_.push_back({ChildOp::mount_op, nullptr, p, nullptr,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC});
  }
  for (const char* name : kProcMasked) {
    std::string path = std::string("/proc/") + name;
    if (::access(path.c_str(), F_OK) != 0) continue;
    own_.push_back({ChildOp::mount_op, "/dev/null", keep(path), nullptr, MS_BIND});
  }
}

void RootTemplate::bind(std::vector<ChildOp>& ops, std::deque<std::string>& store, const std::string& host,
                        const char* inside, bool writable, bool is_dir) {
  if (is_dir) ops.push_back({ChildOp::mkdir_op, inside, nullptr, nullptr, 0755});
  else ops.push_back({ChildOp::touch_op, inside, nullptr, nullptr, 0644});
  ops.push_back({ChildOp::mount_op, store.emplace_back(kOld + host).c_str(), inside, nullptr, MS_BIND});
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | locked_flags(host);
  if (!writable) flags |= MS_RDONLY;
  ops.push_back({ChildOp::mount_op, nullptr, inside, nullptr, flags});
}

Status RootTemplate::user_bind(ChildPlan& plan, const RootIdentity& who, const std::string& host, const char* inside,
                               bool writable, bool is_dir) {
  if (!who.mapping_for) {
    bind(plan.ops, plan.strings, host, inside, writable, is_dir);
    return {};
  }
  struct stat st {};
  if (::stat(host.c_str(), &st) != 0) return Error{"cannot bind " + host + ": " + std::strerror(errno)};
  auto ns = who.mapping_for(st.st_uid, st.st_gid);
  if (!ns) return Error{"cannot bind " + host + ": " + ns.message()};
  unsigned long locked = locked_flags(host);
  unsigned long attrs = MOUNT_ATTR_NOSUID;
  if (locked & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (locked & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  if (!writable) attrs |= MOUNT_ATTR_RDONLY;
  if (is_dir) plan.ops.push_back({ChildOp::mkdir_op, inside, nullptr, nullptr, 0755});
  else plan.ops.push_back({ChildOp::touch_op, inside, nullptr, nullptr, 0644});
  plan.ops.push_back({ChildOp::idmap_bind_op, plan.keep(kOld + host), inside, nullptr, attrs, nullptr, 0, *ns});
  return {};
}

const char* RootTemplate::add_host_entry(const std::string& host, std::vector<ChildOp>& links,
                                         std::vector<ChildOp>& binds, bool dirs_only) {
  struct stat st {};
  if (::lstat(host.c_str(), &st) != 0) return nullptr;
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = ::readlink(host.c_str(), target, sizeof target - 1);
    if (n > 0) links.push_back({ChildOp::symlink_op, keep(std::string(target, static_cast<size_t>(n))), keep(host)});
    return nullptr;
  }
  if (!S_ISDIR(st.st_mode) && dirs_only) return nullptr;
  if (!S_ISDIR(st.st_mode)) etc_files_.push_back(host);
  const char* inside = keep(host);
  bind(binds, strings_, host, inside, false, S_ISDIR(st.st_mode));
  return inside;
}

RootTemplate::~RootTemplate() {
  for (auto& p : prepared_)
    if (p.ns >= 0) ::close(p.ns);
}

// Which file each host file bound into /etc is now (a bind keeps the file
// it was made of, not its path).
std::vector<std::pair<dev_t, ino_t>> RootTemplate::bound_files() const {
  std::vector<std::pair<dev_t, ino_t>> ids;
  for (const std::string& f : etc_files_) {
    struct stat st {};
    ids.emplace_back(::stat(f.c_str(), &st) == 0 ? std::make_pair(st.st_dev, st.st_ino) : std::make_pair(dev_t{}, ino_t{}));
  }
  return ids;
}

int RootTemplate::prepared_root(bool with_resolv_conf) {
  Prepared& p = prepared_[with_resolv_conf ? 1 : 0];
  // A host file replaced since (ldconfig writes a new ld.so.cache and
  // renames it over the old one; a package upgrade replaces services):
  // prepared again, so sandboxes see the host's current files, as a root
  // built in place would.
  auto files = bound_files();
  if (p.tried && p.ns >= 0 && files != p.files) {
    ::close(p.ns);
    p.tried = false;
  }
  if (!p.tried) {
    p.tried = true;
    p.files = std::move(files);
    auto ns = make_prepared_root(prepared_root_ops(with_resolv_conf), prepared_userns_);
    p.ns = ns ? *ns : -1;  // a root that cannot be prepared is built in place, as unprivileged
  }
  return p.ns;
}

void RootTemplate::add_prepared_ops(int ns, ChildPlan& plan) {
  auto& ops = plan.ops;
  plan.root_ns = ns;
  plan.root_parts = tops_;
  plan.root_parts.push_back("/etc");
  plan.root_parts.push_back("/dev");
  plan.root_trees.assign(plan.root_parts.size(), -1);
  ops.insert(ops.end(), prefix_.begin(), prefix_.end());
  ops.insert(ops.end(), links_.begin(), links_.end());
  for (size_t i = 0; i < plan.root_parts.size(); ++i) {
    ops.push_back({ChildOp::mkdir_op, plan.root_parts[i], nullptr, nullptr, 0755});
    ops.push_back({ChildOp::attach_op, nullptr, plan.root_parts[i], nullptr, i});
  }
  ops.insert(ops.end(), own_.begin(), own_.end());
}

// A bind whose inside path is in /usr, /etc, /dev (…) needs its mount point
// made there, which the prepared root's read-only copies do not allow: such
// a sandbox builds its root in place.
bool RootTemplate::binds_into_prepared_parts(const Isolation& iso) const {
  std::vector<std::string> parts(tops_.begin(), tops_.end());
  parts.push_back("/etc");
  parts.push_back("/dev");
  for (auto& b : iso.binds) {
    const std::string& inside = b.inside.empty() ? b.host : b.inside;
    for (auto& p : parts)
      if (inside == p || inside.rfind(p + "/", 0) == 0) return true;
  }
  return false;
}

Status RootTemplate::add_ops(const Isolation& iso, const RootIdentity& who, ChildPlan& plan) {
  auto& ops = plan.ops;
  // As root, or unprivileged in the engine's held user namespace, the
  // host-only parts come copied from a prepared root (a few calls instead
  // of ~50); otherwise (a child in a user namespace of its own could not
  // enter it) they are built in place.
  bool host_resolv = iso.network == Network::host && !resolv_conf_.empty();
  int prepared = prepared_allowed_ && !binds_into_prepared_parts(iso) ? prepared_root(host_resolv) : -1;
  if (prepared >= 0) add_prepared_ops(prepared, plan);
  else ops.insert(ops.end(), head_.begin(), head_.end());
  // The command's own tmpfs directories belong to it: chowned rather than
  // mounted with uid=/gid=, which /proc/self/mountinfo would show (as root,
  // the sandbox's host id).
  auto own = [&](const char* dir) { ops.push_back({ChildOp::chown_op, dir, nullptr, nullptr, who.uid, nullptr, who.gid}); };
  ops.push_back({ChildOp::mount_op, "tmpfs", "/home/hearth", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m"});
  own("/home/hearth");
  if (iso.workspace.empty()) {
    ops.push_back({ChildOp::mount_op, "tmpfs", kWorkspaceInside, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1g"});
    own(kWorkspaceInside);
  } else {
    std::string ws = real(iso.workspace);
    if (ws.empty()) return Error{"workspace " + iso.workspace + " does not exist"};
    if (who.mapping_for) {
      if (auto s = user_bind(plan, who, ws, kWorkspaceInside, true, true); !s.ok()) return s;
      ops.back().flags |= MOUNT_ATTR_NODEV;
    } else {
      ops.push_back({ChildOp::mount_op, plan.keep(kOld + ws), kWorkspaceInside, nullptr, MS_BIND});
      ops.push_back({ChildOp::mount_op, nullptr, kWorkspaceInside, nullptr,
                     MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | locked_flags(ws)});
    }
    // Read-only first: a hidden directory inside one is still covered.
    for (auto& rel : iso.read_only) {
      if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string::npos)
        return Error{"cannot make '" + rel + "' read-only: it must be a path relative to the workspace, without '..'"};
      struct stat st {};
      if (::lstat((ws + "/" + rel).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      if (auto s = user_bind(plan, who, ws + "/" + rel, plan.keep(std::string(kWorkspaceInside) + "/" + rel), false, true);
          !s.ok())
        return s;
    }
    for (auto& rel : iso.hidden) {
      if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string::npos)
        return Error{"cannot hide '" + rel + "': it must be a path relative to the workspace, without '..'"};
      struct stat st {};
      if (::stat((ws + "/" + rel).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // nothing there to hide
      ops.push_back({ChildOp::mount_op, "tmpfs", plan.keep(std::string(kWorkspaceInside) + "/" + rel), "tmpfs",
                     MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0555"});
    }
  }
  if (host_resolv) {
    if (prepared < 0) ops.push_back({ChildOp::touch_op, "/etc/resolv.conf", nullptr, nullptr, 0644});
    ops.push_back({ChildOp::mount_op, plan.keep(kOld + resolv_conf_), "/etc/resolv.conf", nullptr, MS_BIND});
  }
  for (auto& b : iso.binds) {
    std::string host = real(b.host);
    if (host.empty()) return Error{"cannot bind " + b.host + ": no such file or directory"};
    std::string inside = b.inside.empty() ? b.host : b.inside;
    if (inside.empty() || inside[0] != '/' || inside.find("/..") != std::string::npos)
      return Error{"cannot bind " + b.host + ": the inside path '" + inside + "' must be absolute, without '..'"};
    if (inside == kWorkspaceInside || inside.rfind(std::string(kWorkspaceInside) + "/", 0) == 0)
      return Error{"cannot bind " + b.host + " at " + inside + ": paths under /workspace belong to the workspace"};
    struct stat st {};
    ::stat(host.c_str(), &st);
    // Parents of the inside path, made in the sandbox's own tmpfs root.
    for (size_t pos = inside.find('/', 1); pos != std::string::npos; pos = inside.find('/', pos + 1))
      ops.push_back({ChildOp::mkdir_op, plan.keep(inside.substr(0, pos)), nullptr, nullptr, 0755});
    if (auto s = user_bind(plan, who, host, plan.keep(inside), b.writable, S_ISDIR(st.st_mode)); !s.ok()) return s;
  }
  ops.insert(ops.end(), tail_.begin(), tail_.end());
  return {};
}

}  // namespace hearth::sandbox
