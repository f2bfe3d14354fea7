#include "commands/git_push.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace hearth::commands {

namespace {

namespace fs = std::filesystem;

constexpr size_t kRefFileMax = 4096;
constexpr size_t kPackedRefsMax = 32 << 20;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The contents of `rel` beneath directory `root`, opened without following
// any symlink or leaving `root`, a regular file, at most `max` bytes. An
// error names the file; `missing` is set when it does not exist.
Result<std::string> read_beneath(const std::string& root, const std::string& rel, size_t max, bool* missing = nullptr) {
  Fd dir{::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd < 0) return Error{"cannot open " + root + ": " + std::strerror(errno)};
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  Fd f{static_cast<int>(::syscall(SYS_openat2, dir.fd, rel.c_str(), &how, sizeof how))};
  if (f.fd < 0) {
    if (missing) *missing = errno == ENOENT;
    return Error{"cannot read the workspace's " + rel + ": " + std::strerror(errno)};
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return Error{"the workspace's " + rel + " is not a regular file"};
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = ::read(f.fd, buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) return Error{"the workspace's " + rel + " is larger than " + std::to_string(max) + " bytes"};
  }
  return out;
}

bool is_hex_id(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Runs `git check-ref-format --branch NAME` in `dir` with no config but
// the broker's; its output is the name as git understands it.
Result<std::string> run_check_ref_format(const std::string& git, const std::string& name, const std::string& dir) {
  // Everything the child needs is made before fork: the engine has threads,
  // so the child may only make async-signal-safe calls until execve.
  std::string git_dir = "GIT_DIR=" + dir;
  const char* env[] = {git_dir.c_str(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
                       "PATH=/usr/bin:/bin", nullptr};
  const char* argv[] = {"git", "check-ref-format", "--branch", name.c_str(), nullptr};
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error{std::string("cannot start git: ") + std::strerror(errno)};
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Error{std::string("cannot start git: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    ::dup2(out[1], 1);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 2);
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    ::execve(git.c_str(), const_cast<char**>(argv), const_cast<char**>(env));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[1024];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0 && text.size() < 4096) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Error{"not a valid branch name"};
  return trim_newline(text);
}

// The commit `refs/heads/BRANCH` names in the workspace: its loose ref file,
// else its line in packed-refs.
Result<std::string> branch_commit(const std::string& workspace, const std::string& branch) {
  std::string ref = "refs/heads/" + branch;
  bool missing = false;
  auto loose = read_beneath(workspace, ".git/" + ref, kRefFileMax, &missing);
  if (loose) {
    std::string id = trim_newline(*loose);
    if (!is_hex_id(id)) return Error{"the workspace's .git/" + ref + " does not hold a commit id"};
    return id;
  }
  if (!missing) return loose.error();
  auto packed = read_beneath(workspace, ".git/packed-refs", kPackedRefsMax, &missing);
  if (!packed) return Error{"the workspace has no branch '" + branch + "'"};
  size_t start = 0;
  while (start < packed->size()) {
    size_t end = packed->find('\n', start);
    if (end == std::string::npos) end = packed->size();
    std::string_view line(packed->data() + start, end - start);
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos && line.substr(sp + 1) == ref && is_hex_id(line.substr(0, sp)))
      return std::string(line.substr(0, sp));
    start = end + 1;
  }
  return Error{"the workspace has no branch '" + branch + "'"};
}

void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::string prefix = name + "=";
  std::erase_if(env, [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
  env.push_back(prefix + value);
}

bool loopback_http(const std::string& url) {
  for (const char* host : {"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/",
                           "http://[::1]:", "http://[::1]/"})
    if (url.rfind(host, 0) == 0) return true;
  return false;
}

// Refuses a workspace whose object directory lists alternates the engine
// did not lend it (`lent`), or http-alternates: through them a push would
// read, and send, another repository's objects from the host.
Status check_alternates(const std::string& workspace, const fs::path& objects, const std::vector<std::string>& lent) {
  bool missing = false;
  auto http = read_beneath(workspace, ".git/objects/info/http-alternates", kRefFileMax, &missing);
  if (http || !missing)
    return Error{"the workspace's .git/objects/info/http-alternates lists other object stores: a granted push reads "
                 "objects only from the workspace; remove the file"};
  auto list = read_beneath(workspace, ".git/objects/info/alternates", kPackedRefsMax, &missing);
  if (!list && missing) return {};
  if (!list) return list.error();
  auto normal = [](const fs::path& p) {
    std::string n = p.lexically_normal().string();
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    return n;
  };
  std::set<std::string> allowed;
  for (auto& l : lent) allowed.insert(normal(l));
  size_t start = 0;
  while (start < list->size()) {
    size_t end = std::min(list->find('\n', start), list->size());
    std::string line = trim_newline(list->substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    fs::path p = fs::path(line).is_absolute() ? fs::path(line) : objects / line;
    if (!allowed.count(normal(p)))
      return Error{"the workspace's .git/objects/info/alternates names '" + line +
                   "', an object store Hearth did not give it: a granted push reads objects only from the workspace "
                   "(and from the repository a checkout was made from); remove the line"};
  }
  return {};
}

// The broker's view of the workspace's object directory, in `git_dir`:
// links to its `pack` and fan-out folders and nothing else, so that git
// never reads the workspace's info/alternates. Made once per attempt.
Result<std::string> objects_view(const std::string& git_dir, const fs::path& objects) {
  fs::path view = fs::path(git_dir) / "workspace-objects";
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(view, ec))) return view.string();
  fs::path partial = fs::path(git_dir) / "workspace-objects.partial";
  fs::remove_all(partial, ec);
  if (!fs::create_directory(partial, ec)) return Error{"cannot create " + partial.string() + ": " + ec.message()};
  static const char kHex[] = "0123456789abcdef";
  std::vector<std::string> names = {"pack"};
  for (char a : std::string_view(kHex, 16))
    for (char b : std::string_view(kHex, 16)) names.push_back(std::string{a, b});
  for (auto& n : names) {
    fs::create_symlink(objects / n, partial / n, ec);
    if (ec) return Error{"cannot link " + (partial / n).string() + ": " + ec.message()};
  }
  fs::rename(partial, view, ec);
  if (ec && !fs::is_directory(fs::symlink_status(view, ec))) return Error{"cannot create " + view.string()};
  return view.string();
}

}  // namespace

Status check_remote_url(const std::string& url) {
  for (char c : url)
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ')
      return Error{"the remote '" + url + "' holds a space or a control character"};
  if (url.rfind("https://", 0) == 0 || url.rfind("ssh://", 0) == 0) {
    if (url.find('/', url.find("://") + 3) == std::string::npos || url.size() <= url.find("://") + 3)
      return Error{"the remote '" + url + "' names no host and path"};
    return {};
  }
  if (loopback_http(url)) return {};
  // scp-like: user@host:path, with no scheme and a host before the colon.
  size_t at = url.find('@'), colon = url.find(':');
  if (url.find("://") == std::string::npos && url.find("::") == std::string::npos && at != std::string::npos &&
      colon != std::string::npos && at > 0 && colon > at + 1 && colon + 1 < url.size() && url[0] != '-' &&
      url.find('/') > colon)
    return {};
  return Error{"the remote '" + url + "' is not an https:// or ssh:// URL (or user@host:path): a push goes to a "
               "server, never to a local path, file://, or a transport helper"};
}

Status make_push_git_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "objects", ec);
  if (!ec) fs::create_directories(fs::path(dir) / "refs" / "heads", ec);
  if (ec) return Error{"cannot create " + dir + ": " + ec.message()};
  ::chmod(dir.c_str(), 0700);
  std::ofstream(fs::path(dir) / "HEAD") << "ref: refs/heads/hearth-push\n";
  std::ofstream config(fs::path(dir) / "config");
  config << "[core]\n\trepositoryformatversion = 0\n\tbare = true\n\thooksPath = /dev/null\n"
            "\tfsmonitor = false\n[protocol \"ext\"]\n\tallow = never\n[protocol \"file\"]\n\tallow = never\n";
  if (!config) return Error{"cannot write " + dir + "/config"};
  return {};
}

Status check_branch_name(const std::string& name, const std::string& git, const std::string& safe_dir) {
  if (name.empty() || name[0] == '-' || name.find("@{") != std::string::npos || name == "HEAD")
    return Error{"'" + name + "' is not a valid branch name"};
  auto checked = run_check_ref_format(git, name, safe_dir);
  if (!checked || *checked != name) return Error{"'" + name + "' is not a valid branch name"};
  return {};
}

Result<std::string> workspace_branch(const std::string& workspace, const std::string& git, const std::string& safe_dir) {
  auto head = read_beneath(workspace, ".git/HEAD", kRefFileMax);
  if (!head) return head.error();
  std::string line = trim_newline(*head);
  const std::string prefix = "ref: refs/heads/";
  if (line.rfind(prefix, 0) != 0) {
    if (is_hex_id(line)) return std::string();  // detached
    return Error{"the workspace's .git/HEAD names no branch"};
  }
  std::string branch = line.substr(prefix.size());
  if (auto s = check_branch_name(branch, git, safe_dir); !s.ok())
    return Error{"the workspace's current branch " + s.message()};
  return branch;
}

Result<PushPlan> plan_push(const std::vector<std::string>& args, const std::string& workspace,
                           const GitPushTarget& target, const std::string& git, std::vector<std::string> env) {
  if (target.remote_url.empty())
    return Error{"this git grant names no remote: a push goes only to the URL the workflow gives as "
                 "remote = \"https://...\" in its [commands] table"};
  if (args.empty() || args[0] != "push") return Error{"not a push"};
  std::vector<std::string> flags;
  size_t i = 1;
  for (; i < args.size() && !args[i].empty() && args[i][0] == '-'; ++i) {
    const std::string& a = args[i];
    if (a == "-q" || a == "--quiet" || a == "-n" || a == "--dry-run") flags.push_back(a);
    else if (a != "-u" && a != "--set-upstream")  // no upstream to record: the broker's directory is not the workspace
      return Error{"the option '" + a + "' is not supported by a granted push"};
  }
  if (i == args.size() || (args[i] != "origin" && args[i] != target.remote_url))
    return Error{"a granted push goes to 'origin', which stands for " + target.remote_url};
  ++i;
  auto current = workspace_branch(workspace, git, target.git_dir);
  if (!current) return current.error();
  std::vector<std::string> specs(args.begin() + static_cast<long>(i), args.end());
  if (specs.empty()) specs.push_back("HEAD");
  std::vector<std::string> refspecs;
  for (auto& spec : specs) {
    if (spec.empty() || spec[0] == '+' || spec[0] == ':' || spec[0] == '-')
      return Error{"the refspec '" + spec + "' is not a branch to push"};
    size_t colon = spec.find(':');
    std::string src = spec.substr(0, colon), dst = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (src == "HEAD" || src == "refs/heads/" + *current) src = *current;
    else if (src.rfind("refs/heads/", 0) == 0) src = src.substr(11);
    if (src.empty()) return Error{"HEAD is detached in the workspace: there is no branch to push"};
    if (dst.empty()) dst = src;
    else if (dst.rfind("refs/heads/", 0) == 0) dst = dst.substr(11);
    for (auto* name : {&src, &dst})
      if (auto s = check_branch_name(*name, git, target.git_dir); !s.ok()) return s.error();
    auto commit = branch_commit(workspace, src);
    if (!commit) return commit.error();
    refspecs.push_back(*commit + ":refs/heads/" + dst);
  }
  // The workspace's objects, read as data; its config and hooks are never read.
  fs::path objects = fs::path(workspace) / ".git" / "objects";
  std::error_code ec;
  fs::path physical = fs::canonical(objects, ec);
  fs::path root = fs::canonical(workspace, ec);
  auto [r, q] = std::mismatch(root.begin(), root.end(), physical.begin(), physical.end());
  if (ec || r != root.end() || physical == root) return Error{"the workspace's .git/objects is not inside the workspace"};
  if (auto s = check_alternates(workspace, objects, target.lent_objects); !s.ok()) return s.error();
  auto view = objects_view(target.git_dir, physical);
  if (!view) return view.error();
  std::string alternates = *view;
  for (auto& l : target.lent_objects) alternates += ":" + l;
  PushPlan plan;
  plan.argv = {"git", "push"};
  plan.argv.insert(plan.argv.end(), flags.begin(), flags.end());
  plan.argv.push_back("--");
  plan.argv.push_back(target.remote_url);
  plan.argv.insert(plan.argv.end(), refspecs.begin(), refspecs.end());
  for (const char* drop : {"GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_CONFIG",
                           "GIT_CONFIG_PARAMETERS", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR"})
    std::erase_if(env, [&](const std::string& e) { return e.rfind(std::string(drop) + "=", 0) == 0; });
  set_env(env, "GIT_DIR", target.git_dir);
  set_env(env, "GIT_ALTERNATE_OBJECT_DIRECTORIES", alternates);
  set_env(env, "GIT_CONFIG_NOSYSTEM", "1");
  set_env(env, "GIT_CONFIG_GLOBAL", "/dev/null");
  set_env(env, "GIT_TERMINAL_PROMPT", "0");
  set_env(env, "GIT_PROTOCOL_FROM_USER", "0");
  plan.env = std::move(env);
  plan.cwd = target.git_dir;
  return plan;
}

}  // namespace hearth::commands
