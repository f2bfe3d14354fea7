// The engine's own environment, seen by an attacker. A secret given to
// `hearth` in its environment (a granted command's token, the server's API
// token) must not be readable from /proc/<engine>/environ, neither by a step
// (local, or in the namespace sandbox) nor by any other process, and the
// engine must be non-dumpable so that a process of its user cannot read its
// memory either. The real binary runs as an unprivileged uid (when the tests
// run as root), as a deployment would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "ci/webhook.h"
#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "tests/support/testdata.h"

using namespace hearth::testing;

namespace {

const std::string kMarker = "marker-5e1f0c-declared-secret";
const std::string kTokenMarker = "marker-77aa02-api-token";
const std::string kWebhookMarker = "marker-3b9d41-webhook-secret";
constexpr uid_t kUnprivileged = 4242;  // no passwd entry needed

// A repository the unprivileged engine can write to.
struct Repo {
  TempDir dir;
  Repo() {
    fs::create_directories(root() / ".hearth" / "workflows");
    own(dir.path);
  }
  fs::path root() const { return dir.path; }
  void workflow(const std::string& name, const std::string& toml) const {
    write_file(root() / ".hearth" / "workflows" / (name + ".toml"), toml);
    own(root() / ".hearth");
    own(root() / ".hearth" / "workflows");
    own(root() / ".hearth" / "workflows" / (name + ".toml"));
  }
  static void own(const fs::path& p) {
    if (geteuid() == 0) BOOST_REQUIRE(::chown(p.c_str(), kUnprivileged, kUnprivileged) == 0);
  }
};

// While alive, HearthProcess starts `hearth` as kUnprivileged (through
// setpriv, which execs it: the pid is hearth's) when the tests run as root.
struct AsUnprivileged {
  TempDir dir;
  std::string saved;
  AsUnprivileged() {
    saved = hearth::testing::hearth_bin().string();
    if (geteuid() != 0) return;
    fs::path wrapper = dir.path / "hearth";
    write_file(wrapper, "#!/bin/sh\nexec setpriv --reuid=" + std::to_string(kUnprivileged) +
                            " --regid=" + std::to_string(kUnprivileged) + " --clear-groups -- '" + saved + "' \"$@\"\n");
    fs::permissions(dir.path, fs::perms::all);
    fs::permissions(wrapper, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec |
                                 fs::perms::group_read | fs::perms::others_read);
    ::setenv("HEARTH_BIN", wrapper.c_str(), 1);
  }
  ~AsUnprivileged() { ::setenv("HEARTH_BIN", saved.c_str(), 1); }
};

// Waits for a file a step creates; fails loudly after 30 s.
void wait_for_file(const fs::path& p, HearthProcess& proc) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!fs::exists(p)) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                          "the step did not create " + p.string() + "; hearth printed:\n" + proc.out());
    BOOST_REQUIRE_MESSAGE(::kill(proc.pid(), 0) == 0, "hearth exited before the step created " + p.string());
    std::this_thread::sleep_for(20ms);
  }
}

// What a process outside the engine finds, while a step runs: the environment
// block must hold none of the markers, and /proc/<pid> must be root's (the
// kernel's sign of a non-dumpable process) though the engine is not root.
void check_from_outside(pid_t pid) {
  std::string environ_block = read_file("/proc/" + std::to_string(pid) + "/environ");
  for (auto& m : {kMarker, kTokenMarker, kWebhookMarker})
    BOOST_TEST(environ_block.find(m) == std::string::npos, "/proc/<engine>/environ shows " << m);
  BOOST_TEST(environ_block.find("PATH=") == std::string::npos, "the environment block was not zeroed");
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("\nUid:");
  BOOST_REQUIRE(at != std::string::npos);
  uid_t uid = static_cast<uid_t>(std::strtoul(status.c_str() + at + 5, nullptr, 10));
  BOOST_REQUIRE_MESSAGE(uid != 0, "the engine runs as root: dumpability cannot be seen from /proc ownership");
  struct stat st {};
  BOOST_REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/environ").c_str(), &st) == 0);
  BOOST_TEST(st.st_uid == 0u, "/proc/<engine> belongs to the engine's uid " << st.st_uid << ": it is dumpable");
}

// A local step that plays the attacker: its own environment, then the
// engine's /proc/<pid>/environ once the test has written engine.pid.
const char* kLocalProbe = R"(
[[steps]]
id = "probe"
run = '''
env | grep -c marker- > own-env.txt || true
touch ready
while [ ! -f go ]; do sleep 0.02; done
pid=$(cat engine.pid)
tr '\0' '\n' < /proc/$pid/environ > engine-environ.txt 2>&1 || true
touch done
'''
)";

std::string http_post(int port, const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  for (auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n" + body;
  BOOST_REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return got;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(environ_security)

BOOST_AUTO_TEST_CASE(run_keeps_a_declared_secret_out_of_proc_environ_for_local_steps_and_outsiders) {
  Repo repo;
  repo.workflow("probe", std::string(R"(
name = "probe"
[sandbox]
kind = "local"
[commands.tool]
exec = "/bin/true"
secrets = ["HEARTH_MARKER_SECRET"]
allow = ["*"]
)") + kLocalProbe);
  AsUnprivileged as_user;
  HearthProcess p({{"run", "probe"}, {{"HEARTH_MARKER_SECRET", kMarker}, {"HOME", repo.root().string()}}, repo.root()});
  wait_for_file(repo.root() / "ready", p);
  check_from_outside(p.pid());
  write_file(repo.root() / "engine.pid", std::to_string(p.pid()));
  write_file(repo.root() / "go", "");
  auto r = p.finish(60s);
  BOOST_TEST(r.exit_code == 0, r.out << r.err);
  BOOST_TEST(read_file(repo.root() / "own-env.txt") == "0\n");
  std::string seen = read_file(repo.root() / "engine-environ.txt");
  BOOST_TEST(seen.find(kMarker) == std::string::npos, "the step read the engine's environment:\n" << seen);
  BOOST_TEST(r.out.find(kMarker) == std::string::npos);
  BOOST_TEST(r.err.find(kMarker) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_namespace_step_finds_the_secret_nowhere_and_the_sandbox_still_starts) {
  Repo repo;
  repo.workflow("boxed", R"(
name = "boxed"
[commands.tool]
exec = "/bin/true"
secrets = ["HEARTH_MARKER_SECRET"]
allow = ["*"]
[[steps]]
id = "probe"
run = '''
{ env; for f in /proc/[0-9]*/environ; do tr '\0' '\n' < $f; done; } 2>/dev/null | grep -c marker- > found.txt || true
echo ran
'''
)");
  AsUnprivileged as_user;
  HearthProcess p({{"run", "boxed"}, {{"HEARTH_MARKER_SECRET", kMarker}, {"HOME", repo.root().string()}}, repo.root()});
  auto r = p.finish(60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  BOOST_TEST(read_file(repo.root() / "found.txt") == "0\n");
}

BOOST_AUTO_TEST_CASE(serve_takes_its_secrets_from_files_and_keeps_them_out_of_proc_environ) {
  Repo repo;
  repo.workflow("hooked", std::string(R"(
name = "hooked"
[on]
github = ["issues.opened"]
[sandbox]
kind = "local"
)") + kLocalProbe);
  fs::path secret_file = repo.root() / "webhook-secret";
  write_file(secret_file, kWebhookMarker + "\n");
  Repo::own(secret_file);
  fs::permissions(secret_file, fs::perms::owner_read);
  AsUnprivileged as_user;
  HearthProcess p({{"serve", "--listen", "127.0.0.1:0", "--repo", repo.root().string(), "--webhook-secret-file",
                    secret_file.string()},
                   {{"HEARTH_WEBHOOK_SECRET", ""}, {"HEARTH_API_TOKEN", kTokenMarker}, {"HOME", repo.root().string()}},
                   repo.root()});
  auto port = p.wait_for_stdout(std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"), 20s);
  BOOST_REQUIRE_MESSAGE(port, "hearth serve did not start listening");
  std::string body = R"({"action":"opened","issue":{"number":7}})";
  auto forged = http_post(std::stoi(*port), "/hooks/github",
                          {{"X-GitHub-Event", "issues"}, {"X-GitHub-Delivery", "d-0"},
                           {"X-Hub-Signature-256", "sha256=" + hearth::ci::hmac_sha256_hex("not-it", body)}},
                          body);
  BOOST_TEST(forged.rfind("HTTP/1.1 401", 0) == 0, forged);
  auto answer = http_post(std::stoi(*port), "/hooks/github",
                          {{"Content-Type", "application/json"}, {"X-GitHub-Event", "issues"}, {"X-GitHub-Delivery", "d-1"},
                           {"X-Hub-Signature-256", "sha256=" + hearth::ci::hmac_sha256_hex(kWebhookMarker, body)}},
                          body);
  BOOST_REQUIRE_MESSAGE(answer.rfind("HTTP/1.1 202", 0) == 0, answer);
  wait_for_file(repo.root() / "ready", p);
  check_from_outside(p.pid());
  write_file(repo.root() / "engine.pid", std::to_string(p.pid()));
  write_file(repo.root() / "go", "");
  wait_for_file(repo.root() / "done", p);
  p.signal(SIGTERM);
  auto r = p.finish(30s);
  BOOST_TEST(read_file(repo.root() / "own-env.txt") == "0\n");
  std::string seen = read_file(repo.root() / "engine-environ.txt");
  for (auto& m : {kTokenMarker, kWebhookMarker})
    BOOST_TEST(seen.find(m) == std::string::npos, "the step read " << m << " from the engine:\n" << seen);
  BOOST_TEST(r.out.find("read endpoints on") != std::string::npos, "the API token from the environment was lost");
}

BOOST_AUTO_TEST_CASE(serve_reads_systemd_credentials_before_the_environment) {
  Repo repo;
  repo.workflow("quiet", R"(
name = "quiet"
[on]
github = ["issues.opened"]
[sandbox]
kind = "local"
[[steps]]
id = "noop"
run = "true"
)");
  TempDir creds;
  write_file(creds.path / "webhook-secret", kWebhookMarker + "\r\n");
  Repo::own(creds.path);
  Repo::own(creds.path / "webhook-secret");
  AsUnprivileged as_user;
  // The environment holds another secret: the credential must win.
  HearthProcess p({{"serve", "--listen", "127.0.0.1:0", "--repo", repo.root().string()},
                   {{"CREDENTIALS_DIRECTORY", creds.path.string()}, {"HEARTH_WEBHOOK_SECRET", "the-environment-one"},
                    {"HOME", repo.root().string()}},
                   repo.root()});
  auto port = p.wait_for_stdout(std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"), 20s);
  BOOST_REQUIRE_MESSAGE(port, "hearth serve did not start listening");
  std::string body = R"({"action":"opened","issue":{"number":8}})";
  auto deliver = [&](const std::string& id, const std::string& secret) {
    return http_post(std::stoi(*port), "/hooks/github",
                     {{"X-GitHub-Event", "issues"}, {"X-GitHub-Delivery", id},
                      {"X-Hub-Signature-256", "sha256=" + hearth::ci::hmac_sha256_hex(secret, body)}},
                     body);
  };
  BOOST_TEST(deliver("c-1", "the-environment-one").rfind("HTTP/1.1 401", 0) == 0);
  BOOST_TEST(deliver("c-2", kWebhookMarker).rfind("HTTP/1.1 202", 0) == 0);
  p.signal(SIGTERM);
  p.finish(30s);
}

BOOST_AUTO_TEST_CASE(a_secret_file_that_is_not_a_regular_file_is_refused_by_name) {
  TempDir dir;
  HearthProcess p({{"serve", "--listen", "127.0.0.1:0", "--repo", dir.str(), "--secret-file", dir.str()}, {}, dir.path});
  auto o = p.finish();
  BOOST_TEST(o.exit_code == 2);
  BOOST_TEST(o.err.find("--webhook-secret-file " + dir.str() + ": not a regular file") != std::string::npos, o.err);
}

BOOST_AUTO_TEST_SUITE_END()
