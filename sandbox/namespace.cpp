// The `namespace` backend. Each command starts from one clone() with every
// namespace flag at once, sharing the engine's memory until it execs (like
// posix_spawn's vfork). The child builds its root from a plan computed here
// (mounts.cpp, seccomp_filter.cpp, cgroups.cpp) and execs hearth-init
// (init_main.cpp) as the init of the pid namespace, which starts the command
// from its own memory and forwards SIGTERM to it; killing the init ends
// everything the command started. The network namespace comes ready-made
// (netns_pool.h): a child process of the engine makes them ahead, never
// waited for. Run by an ordinary user, the engine holds a user namespace of
// its own (idmap.h) in which those and the prepared root are made, and each
// sandbox's first process is cloned inside it (child.cpp).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "sandbox/cgroups.h"
#include "sandbox/child_plan.h"
#include "sandbox/child_setup.h"
#include "sandbox/forwarder.h"
#include "sandbox/idmap.h"
#include "sandbox/mounts.h"
#include "sandbox/netns_pool.h"
#include "sandbox/passed_fds.h"
#include "sandbox/path_search.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/session.h"
#include "sandbox/watched_process.h"
#include "util/companion.h"
#include "util/docs_link.h"

namespace hearth::sandbox {

namespace {

constexpr size_t kChildStack = 256 * 1024;
constexpr int kInsideUid = 1000;
constexpr size_t kMaxForwards = 64;  // listen_forwards() in child.cpp holds this many

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The forwards are possible: network = proxies, distinct ports, socket paths
// that fit a sockaddr_un. Adds the child's part to `plan`.
Status plan_forwards(const Isolation& iso, ChildPlan& plan) {
  if (iso.forwards.empty()) return {};
  if (iso.network != Network::proxies)
    return Error{"loopback forwards need network = proxies (the sandbox's own network namespace)"};
  if (iso.forwards.size() > kMaxForwards)
    return Error{"at most " + std::to_string(kMaxForwards) + " loopback forwards per sandbox, not " +
                 std::to_string(iso.forwards.size())};
  std::vector<uint16_t> seen;
  for (auto& f : iso.forwards) {
    if (f.port == 0) return Error{"a loopback forward needs a port (1-65535)"};
    if (std::find(seen.begin(), seen.end(), f.port) != seen.end())
      return Error{"port " + std::to_string(f.port) + " is forwarded twice"};
    seen.push_back(f.port);
    if (f.socket.empty() || f.socket[0] != '/' || f.socket.size() >= sizeof(sockaddr_un{}.sun_path))
      return Error{"the forward of port " + std::to_string(f.port) + " needs an absolute Unix socket path shorter than " +
                   std::to_string(sizeof(sockaddr_un{}.sun_path)) + " bytes, not '" + f.socket + "'"};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    plan.listen_addrs.push_back(a);
    plan.listen_names.push_back(plan.keep("127.0.0.1:" + std::to_string(f.port)));
  }
  return {};
}

// The listening sockets the child sent on `channel` (already there: the
// child has exec'd), or an error.
Result<std::vector<int>> receive_listeners(int channel, size_t n) {
  std::vector<char> control(CMSG_SPACE(n * sizeof(int)));
  char byte = 0;
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  if (::recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
    return Error{std::string("the sandbox did not hand over its forwarded ports: ") + std::strerror(errno)};
  std::vector<int> fds;
  collect_passed_fds(msg, fds);
  if (fds.size() != n) {
    for (int fd : fds) ::close(fd);
    return Error{"the sandbox handed over " + std::to_string(fds.size()) + " forwarded ports, not " + std::to_string(n)};
  }
  return fds;
}

class NamespaceSandbox final : public Sandbox {
 public:
  // As root, no sandbox may be host root: each run's sandboxes are the user
  // 1000 of a user namespace that maps it to an unprivileged host id of
  // their own (idmap.h), entered after the root is built. Otherwise 1000
  // maps to the engine's own ids, in a user namespace each sandbox's first
  // process unshares inside the engine's held one after building its root
  // there (or, where the host refuses the held one, makes at its clone).
  /// Takes `init_fd`: hearth-init, open, exec'd as each one-shot command's init.
  /// `one_command`: make_namespace_sandbox's.
  NamespaceSandbox(const SeccompPrograms& filter, int init_fd, bool one_command)
      : filter_(filter), init_fd_(init_fd), last_cap_(child_setup::last_capability()), one_command_(one_command) {
    launches_->owner = this;
    if (is_host_root()) {
      ids_.emplace(sandbox_id_range());
      return;
    }
    uid_map_ = std::to_string(kInsideUid) + " " + std::to_string(::geteuid()) + " 1";
    gid_map_ = std::to_string(kInsideUid) + " " + std::to_string(::getegid()) + " 1";
  }

  ~NamespaceSandbox() override {
    {
      // A clone in flight uses this object's stacks and filter.
      std::unique_lock lock(launches_->mu);
      launches_->owner = nullptr;
      launches_->idle.wait(lock, [this] { return launches_->cloning == 0; });
    }
    netns_.reset();  // its maker is in the held namespace
    ::close(init_fd_);
    if (held_userns_ >= 0) ::close(held_userns_);
    for (char* s : stacks_) ::munmap(s, 2 * kChildStack);
  }
  NamespaceSandbox(const NamespaceSandbox&) = delete;
  NamespaceSandbox& operator=(const NamespaceSandbox&) = delete;

  Result<Process*> spawn(uv_loop_t* loop, const ExecSpec& spec, ExecCallbacks callbacks) override {
    if (spec.argv.empty()) return Error{"nothing to run: empty command"};
    auto started = std::chrono::steady_clock::now();
    uv_file fds[2];
    if (int rc = uv_pipe(fds, 0, 0); rc != 0) return Error{std::string("cannot create output pipe: ") + uv_strerror(rc)};
    // The loop thread waits neither for the child to build its root nor
    // for the init to start the command: the child is cloned on libuv's
    // thread pool (clone_off_loop; for one command, here), and a command
    // that cannot be started ends with status 127 and the reason in its
    // output, as in a shell, the init's report read once it has exited.
    auto launch = plan(spec, fds[1], -1);
    if (!launch) {
      ::close(fds[0]);
      ::close(fds[1]);
      return Error{diagnosed(launch.message())};
    }
    (*launch)->close_out = true;
    auto at_exit = std::make_shared<AtExit>();
    // The cgroups go when the command has exited (and with it, by the
    // kernel, every process of its pid namespace); so do the forwards.
    callbacks.on_exit = [at_exit, on_output = callbacks.on_output, on_exit = std::move(callbacks.on_exit),
                         program = spec.argv[0]](const ExitInfo& e) {
      if (at_exit->release) std::exchange(at_exit->release, nullptr)();
      if (at_exit->report >= 0) {
        int err = read_report_now(at_exit->report);
        ::close(std::exchange(at_exit->report, -1));
        if (err != 0 && on_output) on_output("hearth: " + start_failure(program, err) + "\n");
      }
      if (on_exit) on_exit(e);
    };
    auto* p = new WatchedProcess(loop, std::move(callbacks), spec, WatchedProcess::Target::pid_namespace);
    p->watch_starting(fds[0], started);
    (*launch)->loop = loop;
    (*launch)->process = p;
    (*launch)->at_exit = std::move(at_exit);
    refill_netns(spec.isolation);
    if (one_command_) {
      clone_launch(**launch);
      hand_over(**launch);
    } else {
      clone_off_loop(std::move(*launch));
    }
    return static_cast<Process*>(p);
  }

  Result<std::unique_ptr<SandboxSession>> open_session(uv_loop_t* loop, const ExecSpec& base) override {
    std::string helper = find_stepbox();
    if (helper.empty())
      return Error{"a namespace session needs the hearth-stepbox program, which was not found beside the engine "
                   "(set HEARTH_STEPBOX to its path)"};
    // Opened here, exec'd by the child after the root is built: the helper
    // needs no bind and no path inside the sandbox.
    int exec_fd = ::open(helper.c_str(), O_RDONLY | O_CLOEXEC);
    if (exec_fd < 0) return Error{"cannot open " + helper + ": " + std::strerror(errno)};
    int control[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
      int err = errno;
      ::close(exec_fd);
      return Error{std::string("cannot create the session's control socket: ") + std::strerror(err)};
    }
    ExecSpec spec = base;
    spec.argv = {"hearth-stepbox"};
    spec.env.clear();
    spec.cwd = kWorkspaceInside;
    auto child = start(loop, spec, control[1], exec_fd);
    ::close(control[1]);
    ::close(exec_fd);
    if (!child) {
      ::close(control[0]);
      return Error{"cannot open a sandbox session: " + child.message()};
    }
    refill_netns(base.isolation);
    return make_helper_session(loop, {child->pid, control[0], std::move(child->release)}, base);
  }

  std::string_view kind() const override { return "namespace"; }

  Result<std::shared_ptr<const Jail>> prepare_jail(const JailSpec& spec) override {
    if (!ids_) return Jail::prepare(spec, std::nullopt, nullptr);
    HostId id = ids_->for_workspace(spec.workspace);
    return Jail::prepare(spec, std::make_pair(id.uid, id.gid),
                         [this, id](uid_t uid, gid_t gid) { return ids_->mapping({uid, gid}, id); });
  }

 private:
  /// A child started in new namespaces, and what to release once it exited.
  struct Started {
    int pid = -1;
    std::function<void()> release;  // cgroups and forwards; null: nothing
    int report = -1;                // report_later: the init's start report, to read once it has exited
  };

  /// What a spawned command's end runs before its on_exit: filled in once
  /// the child is started.
  struct AtExit {
    int report = -1;  // the init's start report
    std::function<void()> release;
  };

  /// Spawns in flight, shared with the threads that clone them: the
  /// sandbox waits for their clones before it goes, and a launch that
  /// finishes after it went ends its command.
  struct Launches {
    std::mutex mu;
    std::condition_variable idle;
    int cloning = 0;
    NamespaceSandbox* owner = nullptr;  // null once the sandbox is gone (loop thread only)
  };

  /// One child's start: planned on the loop thread (plan), cloned on any
  /// thread (clone_launch), finished on the loop thread (finish).
  struct Launch {
    ExecSpec spec;  // the plan points into it
    ChildPlan plan;
    Cgroups::Group group;
    int out_fd = -1;  // the child's stdout and stderr, closed once it is cloned; owned when close_out
    bool close_out = false;
    int report[2] = {-1, -1};
    int channel[2] = {-1, -1};
    bool privileged = false;
    int pid = -1, clone_errno = 0;
    // A spawn cloned off the loop thread:
    uv_work_t work{};
    uv_loop_t* loop = nullptr;
    WatchedProcess* process = nullptr;
    std::shared_ptr<AtExit> at_exit;
    std::shared_ptr<Launches> launches;
    NamespaceSandbox* sandbox = nullptr;  // alive while it is cloned (~NamespaceSandbox waits)

    Launch() = default;
    Launch(const Launch&) = delete;
    Launch& operator=(const Launch&) = delete;
    ~Launch() {
      // Whatever finish() did not get to (an early failure).
      for (int* fd : {&plan.netns_fd, &report[0], &report[1], &channel[0], &channel[1]})
        if (*fd >= 0) ::close(*fd);
      for (int fd : group.procs) ::close(fd);
      if (close_out && out_fd >= 0) ::close(out_fd);
    }
  };

  // Why `program` could not be started in the sandbox (errno `err`).
  static std::string start_failure(const std::string& program, int err) {
    return "cannot start '" + program + "' in the sandbox: " + std::strerror(err) +
           (err == ENOENT ? " (not found on the step's PATH inside the sandbox)" : "");
  }

  // Builds the plan for `spec` and clones the child, whose stdout and stderr
  // are `out_fd` (not taken). With `exec_fd` >= 0 the child execs that
  // file (it is pid 1) instead of looking argv[0] up; otherwise the command
  // runs under hearth-init. Returns once the child has exec'd and the init
  // has started the command. On the calling thread, which it blocks while
  // the child builds its root: for sessions (spawn clones off the loop).
  Result<Started> start(uv_loop_t* loop, const ExecSpec& spec, int out_fd, int exec_fd) {
    auto launch = plan(spec, out_fd, exec_fd);
    if (!launch) return launch.error();
    clone_launch(**launch);
    return finish(loop, **launch, /*report_later=*/false);
  }

  // The launch of `spec` up to its clone: the plan, the cgroup, the pipes.
  // Loop thread.
  Result<std::unique_ptr<Launch>> plan(const ExecSpec& spec_in, int out_fd, int exec_fd) {
    if (!one_command_ && plans_ < 2 && ++plans_ == 2) make_ahead();
    auto launch = std::make_unique<Launch>();
    launch->spec = spec_in;
    launch->out_fd = out_fd;
    const ExecSpec& spec = launch->spec;
    const Isolation& iso = spec.isolation;
    ChildPlan& plan = launch->plan;
    plan.last_cap = last_cap_;
    RootIdentity who;
    if (ids_) {
      HostId id = ids_->for_workspace(iso.workspace);
      auto userns = ids_->mapping({kInsideUid, kInsideUid}, id);
      if (!userns) return userns.error();
      plan.userns_fd = *userns;
      who.uid = id.uid;
      who.gid = id.gid;
      who.mapping_for = [this, id](uid_t uid, gid_t gid) { return ids_->mapping({uid, gid}, id); };
    } else {
      plan.uid_map = uid_map_.c_str();
      plan.gid_map = gid_map_.c_str();
      plan.held_userns = held_userns_;
      if (held_userns_ >= 0) {
        // The root is built in the held namespace, which names the
        // engine's ids as they are.
        who.uid = ::geteuid();
        who.gid = ::getegid();
      }
    }
    auto cwd = inside_cwd(spec.cwd, spec.isolation.workspace);
    if (!cwd) return cwd.error();
    plan.cwd = plan.keep(*cwd);
    if (auto s = root_.add_ops(iso, who, plan); !s.ok()) return s.error();
    plan.loopback_up = iso.network != Network::host;
    if (plan.loopback_up && netns_) plan.netns_fd = netns_->take();  // -1: the clone makes one
    if (auto s = plan_forwards(iso, plan); !s.ok()) return s.error();
    // sock_fprog's pointer is not const; the kernel only reads through it.
    plan.seccomp[0] = {static_cast<unsigned short>(filter_.allow.size()), const_cast<sock_filter*>(filter_.allow.data())};
    plan.seccomp[1] = {static_cast<unsigned short>(filter_.deny.size()), const_cast<sock_filter*>(filter_.deny.data())};
    plan.rlimits.push_back({RLIMIT_CORE, {0, 0}});
    if (iso.memory_bytes || iso.pids || iso.cpus) {
      auto g = cgroups_.create(iso);
      if (!g) return g.error();
      launch->group = std::move(*g);
      plan.cgroup_procs = launch->group.procs;
      // Where no cgroup carries a limit, the rlimit fallback (warnings() says so).
      for (auto& w : cgroups_.warnings(iso)) {
        if (iso.memory_bytes && w.rfind("memory", 0) == 0)
          plan.rlimits.push_back({RLIMIT_AS, {*iso.memory_bytes, *iso.memory_bytes}});
        if (iso.pids && w.rfind("pids", 0) == 0) plan.rlimits.push_back({RLIMIT_NPROC, {*iso.pids, *iso.pids}});
      }
    }
    plan.exec_fd = exec_fd;
    plan.init_fd = exec_fd >= 0 ? -1 : init_fd_;
    for (auto& c : program_candidates(spec.argv[0], spec.env)) plan.candidates.push_back(plan.keep(c));
    for (auto& e : spec.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
    plan.envp.push_back(nullptr);
    plan.out_fd = out_fd;
    int* report = launch->report;
    if (plan.init_fd >= 0) {
      if (::pipe2(report, O_CLOEXEC) != 0) {
        int err = errno;
        cgroups_.release(launch->group);
        return Error{std::string("cannot create the sandbox's start report pipe: ") + std::strerror(err)};
      }
      plan.report_fd = report[1];
      plan.init_argv = {const_cast<char*>("hearth-init"), const_cast<char*>(plan.keep(std::to_string(report[1]))),
                        const_cast<char*>(plan.keep(std::to_string(plan.candidates.size())))};
      for (const char* c : plan.candidates) plan.init_argv.push_back(const_cast<char*>(c));
      for (auto& a : spec.argv) plan.init_argv.push_back(const_cast<char*>(a.c_str()));
      plan.init_argv.push_back(nullptr);
    } else {
      for (auto& a : spec.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
      plan.argv.push_back(nullptr);
    }
    if (!plan.listen_addrs.empty() && ::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, launch->channel) != 0) {
      int err = errno;
      cgroups_.release(launch->group);
      return Error{std::string("cannot create the channel for forwarded ports: ") + std::strerror(err)};
    }
    plan.listen_channel = launch->channel[1];
    launch->privileged = ids_.has_value() || held_userns_ >= 0;
    return launch;
  }

  // Clones the launch's child and waits (blocking this thread, not the
  // others) until it has exec'd or failed. Any thread: it touches nothing
  // of the sandbox but the stacks.
  void clone_launch(Launch& l) {
    char* stack = take_stack();
    if (!stack) {
      l.pid = -1;
      l.clone_errno = ENOMEM;
      return;
    }
    l.pid = clone_child(l.plan, stack, l.spec.isolation.network, l.privileged);
    l.clone_errno = errno;
    give_stack(stack);
  }

  // After the clone: the parent's ends closed, a failure told in the
  // user's words, the forwards started. With `report_later`, the init's
  // start report is Started::report, to read once it has exited;
  // otherwise it is read here (waiting for the init to start the command).
  // Loop thread.
  Result<Started> finish(uv_loop_t* loop, Launch& l, bool report_later) {
    ChildPlan& plan = l.plan;
    int pid = l.pid;
    for (int* fd : {&plan.netns_fd, &l.channel[1], &l.report[1]})
      if (*fd >= 0) ::close(std::exchange(*fd, -1));
    for (int fd : l.group.procs) ::close(fd);
    l.group.procs.clear();
    if (l.close_out) ::close(std::exchange(l.out_fd, -1));
    // The init (if it started) reports whether the command exec'd.
    int exec_errno = 0, kept_report = -1;
    if (l.report[0] >= 0 && pid >= 0 && !plan.failed_what) {
      if (report_later) std::swap(kept_report, l.report[0]);
      else exec_errno = read_start_report(l.report[0]);
    }
    if (exec_errno != 0) {
      plan.failed_what = "exec";
      plan.failed_errno = exec_errno;
    }
    if (pid < 0) {
      cgroups_.release(l.group);
      return Error{"cannot create the sandbox's namespaces: " + std::string(std::strerror(l.clone_errno)) + ". " +
                   namespace_support_problem()};
    }
    if (plan.failed_what) {
      waitpid(pid, nullptr, __WALL);
      cgroups_.release(l.group);
      std::string what = std::string(plan.failed_what) + (plan.failed_path && *plan.failed_path ? " " : "") +
                         (plan.failed_path ? plan.failed_path : "");
      if (std::strcmp(plan.failed_what, "exec") == 0) return Error{start_failure(l.spec.argv[0], plan.failed_errno)};
      if (std::strcmp(plan.failed_what, "id-mapped bind of") == 0)
        return Error{"cannot set up the sandbox: " + what + ": " + std::strerror(plan.failed_errno) +
                     " (as root, binds are id-mapped mounts: the filesystem must support them, as ext4, xfs "
                     "and btrfs do; see " + docs_link("sandbox.md", "Running as root") + ")"};
      return Error{"cannot set up the sandbox: " + what + ": " + std::strerror(plan.failed_errno)};
    }
    Forwarder* forwarder = nullptr;
    if (l.channel[0] >= 0) {
      auto made = start_forwarder(loop, l.spec.isolation, std::exchange(l.channel[0], -1));
      if (!made) {
        ::kill(pid, SIGKILL);
        waitpid(pid, nullptr, __WALL);
        cgroups_.release(l.group);
        if (kept_report >= 0) ::close(kept_report);
        return made.error();
      }
      forwarder = *made;
    }
    Started out;
    out.pid = pid;
    out.report = kept_report;
    if (!l.group.dirs.empty() || forwarder) {
      auto dirs = std::make_shared<Cgroups::Group>(std::move(l.group));
      out.release = [this, dirs, forwarder] {
        if (forwarder) forwarder->close();
        cgroups_.release(*dirs);
      };
    }
    return out;
  }

  // Clones `launch` on libuv's thread pool, so the loop goes on while the
  // child builds its root (under load that took 6-16 ms), and hands the
  // child to its WatchedProcess back on the loop thread.
  void clone_off_loop(std::unique_ptr<Launch> launch) {
    Launch* l = launch.release();
    l->work.data = l;
    l->sandbox = this;
    l->launches = launches_;
    {
      std::lock_guard lock(launches_->mu);
      ++launches_->cloning;
    }
    auto work = [](uv_work_t* req) noexcept {
      auto* l = static_cast<Launch*>(req->data);
      l->sandbox->clone_launch(*l);
      std::lock_guard lock(l->launches->mu);
      if (--l->launches->cloning == 0) l->launches->idle.notify_all();
    };
    auto after = [](uv_work_t* req, int) noexcept {
      std::unique_ptr<Launch> l(static_cast<Launch*>(req->data));
      NamespaceSandbox* owner = l->launches->owner;
      if (!owner) return abandon(*l);
      owner->hand_over(*l);
    };
    if (uv_queue_work(l->loop, &l->work, work, after) != 0) {
      // Cannot happen on a live loop; then on this thread.
      work(&l->work);
      after(&l->work, 0);
    }
  }

  // The cloned launch `l` becomes its process's child (or its failure).
  void hand_over(Launch& l) {
    auto started = finish(l.loop, l, /*report_later=*/true);
    if (!started) return l.process->start_failed(diagnosed(started.message()));
    l.at_exit->report = started->report;
    l.at_exit->release = std::move(started->release);
    l.process->started(started->pid);
  }

  // The sandbox went while `l` was being cloned: its child is killed, and
  // its cgroups, which no sandbox will release now, are removed.
  static void abandon(Launch& l) {
    if (l.close_out && l.out_fd >= 0) ::close(std::exchange(l.out_fd, -1));
    if (l.pid > 0) {
      ::kill(l.pid, SIGKILL);
      waitpid(l.pid, nullptr, __WALL);
    }
    Cgroups::remove(l.group);
    l.process->start_failed("the sandbox was closed while the command was starting");
  }

  // A one-command sandbox skips the probe for user namespaces
  // (make_namespace_sandbox): when it cannot be set up, the probe runs then,
  // and what it finds about the host replaces the failure's own words.
  std::string diagnosed(const std::string& failure) const {
    if (!one_command_) return failure;
    std::string problem = namespace_support_problem();
    return problem.empty() ? failure : "the namespace sandbox cannot run: " + problem;
  }

  char* take_stack() {
    {
      std::lock_guard lock(stacks_mu_);
      if (!stacks_.empty()) {
        char* s = stacks_.back();
        stacks_.pop_back();
        return s;
      }
    }
    void* s = ::mmap(nullptr, 2 * kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    return s == MAP_FAILED ? nullptr : static_cast<char*>(s);
  }

  void give_stack(char* s) {
    std::lock_guard lock(stacks_mu_);
    stacks_.push_back(s);
  }

  // Takes the listening sockets from `channel` (and closes it).
  static Result<Forwarder*> start_forwarder(uv_loop_t* loop, const Isolation& iso, int channel) {
    auto fds = receive_listeners(channel, iso.forwards.size());
    ::close(channel);
    if (!fds) return fds.error();
    std::vector<Forwarder::Listener> listeners;
    for (size_t i = 0; i < fds->size(); ++i) listeners.push_back({(*fds)[i], iso.forwards[i].socket});
    return Forwarder::start(loop, std::move(listeners));
  }

  // What serves later sandboxes: the prepared root and network namespaces
  // in reserve, and for an unprivileged engine, a user namespace of its
  // own, held for its life, in which those two are made and each sandbox's
  // first process starts (docs/sandbox.md, "Run by an ordinary user"; where
  // the host refuses it, a nested user namespace limit, every sandbox makes
  // its own). Made once a second sandbox is planned: a process that starts
  // one (a run with one shell step) pays for none of it; its one sandbox
  // builds its root and namespaces itself. Loop thread.
  void make_ahead() {
    if (is_host_root()) {
      netns_.emplace();
      root_.use_prepared_roots(-1);
      return;
    }
    if (auto held = make_held_user_namespace(); held) {
      held_userns_ = *held;
      root_.use_prepared_roots(held_userns_);
      netns_.emplace(2, held_userns_);
    }
  }

  // As root, once a command runs: asks for the next sandbox's network
  // namespace, if this one used one (does not wait for it).
  void refill_netns(const Isolation& iso) {
    if (netns_ && iso.network != Network::host) netns_->refill();
  }

  static int trampoline(void* plan) noexcept { _exit(run_child_plan(plan)); }
  static int nested_trampoline(void* plan) noexcept { _exit(run_nested_child_plan(plan)); }

  // The start report of an init that has exited: 0, or the errno of the
  // command's failed exec. Never waits (every writer is gone).
  static int read_report_now(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return read_start_report(fd);
  }

  // What the init reports on `fd` (its end closes once the command has
  // exec'd): 0, or the errno of the command's failed exec.
  static int read_start_report(int fd) {
    int code = 0;
    ssize_t n;
    while ((n = ::read(fd, &code, sizeof code)) < 0 && errno == EINTR) {
    }
    return n == static_cast<ssize_t>(sizeof code) && code > 0 ? code : 0;
  }

  // Signals are blocked around clone so no handler of the engine runs in
  // the child while it shares the engine's memory; the child unblocks them
  // (with default handlers) just before exec.
  // `stack` (take_stack) is the child's until the clone returns, which is
  // once the child has exec'd or exited (CLONE_VFORK): only the calling
  // thread waits. Its first half is the sandbox's first process's; the
  // second, the outer child's when there is one (a held user namespace).
  // `privileged`: the namespaces are made by a process with every
  // capability (host root, or in the held user namespace), without a user
  // namespace of their own.
  static int clone_child(ChildPlan& plan, char* stack, Network network, bool privileged) {
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    if (!privileged) flags |= CLONE_NEWUSER;
    if (network != Network::host && plan.netns_fd < 0) flags |= CLONE_NEWNET;
    auto one_at_a_time = child_setup::one_child_at_a_time();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pid;
    if (plan.held_userns >= 0) {
      plan.inner_flags = flags;
      plan.inner_stack = stack + kChildStack;
      pid = ::clone(&NamespaceSandbox::nested_trampoline, stack + 2 * kChildStack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    &plan);
    } else {
      pid = ::clone(&NamespaceSandbox::trampoline, stack + kChildStack, flags | CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid >= 0 && plan.held_userns >= 0) pid = reap_outer(pid, plan, err);
    errno = err;
    return pid;
  }

  // The outer child (pid `outer`) has exited: reaps it and returns the
  // sandbox's first process (-1 with `err` set when it could not be made).
  static int reap_outer(int outer, ChildPlan& plan, int& err) {
    while (::waitpid(outer, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    if (plan.inner_pid >= 0) return plan.inner_pid;
    if (!plan.failed_what) return -1;  // cannot happen: the outer child records why
    err = plan.failed_errno;
    // It failed before the sandbox's namespaces existed: reported as a clone failure.
    plan.failed_what = nullptr;
    return -1;
  }

  const SeccompPrograms& filter_;  // the process's (seccomp_programs()), never freed
  int init_fd_;
  int last_cap_;
  bool one_command_;
  int plans_ = 0;  // sandboxes planned, counted up to the second (make_ahead)
  std::mutex stacks_mu_;
  std::vector<char*> stacks_;  // free stacks for clone_child, kept faulted in from one clone to the next
  std::shared_ptr<Launches> launches_ = std::make_shared<Launches>();
  RootTemplate root_;
  Cgroups cgroups_;
  std::string uid_map_, gid_map_;     // unprivileged
  std::optional<SandboxIds> ids_;     // as root
  int held_userns_ = -1;              // unprivileged: the engine's own user namespace, or -1
  std::optional<NetnsPool> netns_;    // as root, or with held_userns_
};

}  // namespace

namespace {

// The probe's child: shares the engine's memory and runs on the caller's
// stack while the caller waits (CLONE_VM | CLONE_VFORK), so only system calls
// run here, with every signal blocked. Exit status: 0 when a user and a mount
// namespace could be made and the mount tree made private in them.
int probe_child(void*) noexcept {
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(1);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(2);
  _exit(0);
}

// Runs probe_child: its exit status (128 + the signal that killed it), or -1
// with errno when it could not be started or waited for.
// A vfork-style clone rather than fork(): fork copied the whole engine's page
// tables (and ran its atfork handlers) for a child that makes three calls.
int run_probe() {
  alignas(16) char stack[16 * 1024];
  auto one_at_a_time = child_setup::one_child_at_a_time();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(&probe_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return -1;
  int status = 0;
  pid_t got;
  while ((got = ::waitpid(pid, &status, __WALL)) < 0 && errno == EINTR) {
  }
  if (got != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::string namespace_support_problem() {
  static std::once_flag once;
  static std::string problem;
  std::call_once(once, [] {
    int status = run_probe();
    if (status == -1) {
      problem = "cannot probe for user namespaces (starting or waiting for the probe's child failed: " +
                std::string(std::strerror(errno)) + ")";
      return;
    }
    if (status == 0) return;
    if (read_first_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
      problem =
          "this host restricts unprivileged user namespaces through AppArmor "
          "(kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 24.04 and GitHub's hosted runners); "
          "see " + docs_link("sandbox.md", "GitHub's hosted runners and Ubuntu 24.04") +
          " for how to allow them, or choose kind = \"local\" explicitly";
    else if (read_first_line("/proc/sys/user/max_user_namespaces") == "0")
      problem = "user namespaces are disabled on this host (user.max_user_namespaces=0); see " +
                docs_link("sandbox.md", "When the sandbox cannot start");
    else if (read_first_line("/proc/sys/kernel/unprivileged_userns_clone") == "0")
      problem = "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); see " +
                docs_link("sandbox.md", "When the sandbox cannot start");
    else
      problem = "this host does not let Hearth create user and mount namespaces (a container without "
                "CAP_SYS_ADMIN or a seccomp profile may forbid them); see " +
                docs_link("sandbox.md", "When the sandbox cannot start");
  });
  return problem;
}

Result<std::unique_ptr<Sandbox>> make_namespace_sandbox(bool one_command) {
  // One command needs no probe first: if its sandbox cannot be made, the
  // probe says why then (NamespaceSandbox::diagnosed). Its child costs a
  // clone, a quarter of a millisecond of `hearth sandbox run`.
  if (!one_command)
    if (auto p = namespace_support_problem(); !p.empty()) return Error{"the namespace sandbox cannot run: " + p};
  // Host root without CAP_SYS_ADMIN (a container's default capabilities)
  // could only give its commands a user namespace whose user is host root.
  if (is_host_root() && !has_sys_admin())
    return Error{"the namespace sandbox cannot run: Hearth runs as root without CAP_SYS_ADMIN, so its commands "
                 "would be host root; run Hearth as an ordinary user, or as root with CAP_SYS_ADMIN "
                 "(see " + docs_link("sandbox.md", "Running as root") + ")"};
  auto filter = seccomp_programs();
  if (!filter) return filter.error();
  // Every command runs under an init (docs/sandbox.md, "Processes"), opened
  // once and exec'd through this descriptor.
  std::string init = find_companion("HEARTH_INIT", "hearth-init", "sandbox");
  if (init.empty())
    return Error{"the namespace sandbox needs the hearth-init program (each command's init), which was not "
                 "found beside the engine (set HEARTH_INIT to its path)"};
  int init_fd = ::open(init.c_str(), O_RDONLY | O_CLOEXEC);
  if (init_fd < 0) return Error{"cannot open " + init + ": " + std::strerror(errno)};
  return std::unique_ptr<Sandbox>(std::make_unique<NamespaceSandbox>(**filter, init_fd, one_command));
}

std::vector<std::string> limit_warnings(const Isolation& iso) {
  static Cgroups probe;  // read-only use: which controllers exist
  return probe.warnings(iso);
}

}  // namespace hearth::sandbox
