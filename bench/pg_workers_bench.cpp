// Several `hearth serve` processes on one PostgreSQL database (the tests' own
// server: tests/support/pg_server.h, a Unix socket, PostgreSQL's default
// durability), with 1, 2 and 3 of them. For each count, on a fresh database:
//
//   accept: that many `hearth serve --accept` processes take DELIVERIES
//           signed deliveries, sent round-robin by CLIENTS client threads
//           (a connection per delivery); deliveries answered 202 per second.
//   work:   that many `hearth serve --work --jobs JOBS` processes claim the
//           queued deliveries and run them: one run of three `true` steps
//           each (sandbox kind local: the store and the engine are measured,
//           not the sandbox); steps per second, from the first worker's
//           start to the last delivery done in the database. --step CMD
//           runs CMD instead of `true` (e.g. "sleep 0.2": steps that wait on
//           I/O, where more workers add what two cores cannot).
//
// Prints the figures and the ratios to one process. Not a test: it measures,
// never asserts.
//   pg_workers_bench [--hearth PATH] [--deliveries N] [--clients N] [--jobs N] [--max-workers N] [--step CMD]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ci/webhook.h"
#include "engine/store.h"
#include "engine/store_tables.h"
#include "tests/support/files.h"
#include "tests/support/pg_server.h"

extern char** environ;

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const char* kSecret = "bench-secret-for-workers";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One `hearth serve` process; stdout is read until it says where it listens
// (or that it works without a listener); stderr goes to a file.
struct Server {
  pid_t pid = -1;
  int port = 0;

  void start(const std::string& hearth, const std::vector<std::string>& args, const fs::path& err) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all{hearth};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string secret = std::string("HEARTH_WEBHOOK_SECRET=") + kSecret;
    std::vector<char*> env;
    for (char** e = environ; *e; ++e) env.push_back(*e);
    env.push_back(secret.data());
    env.push_back(nullptr);
    int spawned = posix_spawn(&pid, hearth.c_str(), &fa, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (spawned != 0) {
      close(out[0]);
      throw std::runtime_error("cannot start " + hearth);
    }
    std::string seen;
    std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    char buf[512];
    for (;;) {
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) {
        close(out[0]);
        throw std::runtime_error("hearth serve did not start; its stderr is in " + err.string());
      }
      seen.append(buf, static_cast<size_t>(n));
      std::smatch m;
      if (std::regex_search(seen, m, listening)) {
        port = std::stoi(m[1]);
        break;
      }
      if (seen.find("no listener") != std::string::npos) break;
    }
    close(out[0]);  // it writes nothing more there that matters
  }

  void stop() {
    if (pid < 0) return;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
  }
};

// One POST over its own connection; the answer's status, or 0.
int post(int port, const std::string& id, int n) {
  std::string body = "{\"ref\":\"refs/heads/main\",\"after\":\"commit-" + std::to_string(n) +
                     "\",\"repository\":{\"full_name\":\"octo/app\"}}";
  std::string req = "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: " +
                    id + "\r\nX-Hub-Signature-256: sha256=" + hearth::ci::hmac_sha256_hex(kSecret, body) +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
    std::string answer;
    char buf[1024];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(got));
    if (answer.size() > 12 && answer.compare(0, 5, "HTTP/") == 0) status = std::atoi(answer.c_str() + 9);
  }
  close(fd);
  return status;
}

int64_t count(hearth::engine::Store& store, const char* sql) {
  auto rows = store.tables().query(sql, {}, "bench count");
  if (!rows.ok()) throw std::runtime_error(rows.message());
  return rows->front().integer(0);
}

struct Figures {
  double accepted_per_s = 0, steps_per_s = 0;
};

Figures measure(const std::string& hearth, const fs::path& repo, int workers, int deliveries, int clients, int jobs) {
  std::string url = hearth::testing::pg_server().fresh_database();
  hearth::testing::TempDir local;
  auto store = hearth::engine::Store::open(url, nullptr, local.str());
  if (!store.ok()) throw std::runtime_error(store.message());
  Figures f;

  std::vector<Server> acceptors(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i)
    acceptors[static_cast<size_t>(i)].start(
        hearth,
        {"serve", "--accept", "--store", url, "--repo", repo.string(), "--listen", "127.0.0.1:0"},
        repo.parent_path() / ("accept" + std::to_string(i) + ".err"));
  std::atomic<int> next{0}, accepted{0}, refused{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (int n = next++; n < deliveries; n = next++) {
        int port = acceptors[static_cast<size_t>(n % workers)].port;
        int status = post(port, "w" + std::to_string(workers) + "-" + std::to_string(n), n);
        (status == 202 ? accepted : refused)++;
      }
      (void)c;
    });
  for (auto& t : threads) t.join();
  double took = seconds_since(t0);
  f.accepted_per_s = accepted / took;
  for (auto& a : acceptors) a.stop();
  if (refused > 0) std::fprintf(stderr, "  %d deliveries were not answered 202\n", refused.load());

  std::vector<Server> runners(static_cast<size_t>(workers));
  auto t1 = Clock::now();
  for (int i = 0; i < workers; ++i)
    runners[static_cast<size_t>(i)].start(
        hearth, {"serve", "--work", "--store", url, "--repo", repo.string(), "--jobs", std::to_string(jobs)},
        repo.parent_path() / ("work" + std::to_string(i) + ".err"));
  auto deadline = Clock::now() + std::chrono::minutes(5);
  while (count(**store, "SELECT count(*) FROM deliveries WHERE state='done'") < accepted) {
    if (Clock::now() > deadline) throw std::runtime_error("the workers did not finish within 5 minutes");
    usleep(20 * 1000);
  }
  double ran = seconds_since(t1);
  int64_t steps = count(**store, "SELECT count(*) FROM steps WHERE status='succeeded'");
  f.steps_per_s = static_cast<double>(steps) / ran;
  for (auto& r : runners) r.stop();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::string hearth = "build/cli/hearth";
  int deliveries = 600, clients = 8, jobs = 4, max_workers = 3;
  std::string step = "true";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--hearth") hearth = argv[i + 1];
    else if (a == "--deliveries") deliveries = std::atoi(argv[i + 1]);
    else if (a == "--clients") clients = std::atoi(argv[i + 1]);
    else if (a == "--jobs") jobs = std::atoi(argv[i + 1]);
    else if (a == "--max-workers") max_workers = std::atoi(argv[i + 1]);
    else if (a == "--step") step = argv[i + 1];
    else return std::fprintf(stderr, "unknown option %s\n", a.c_str()), 2;
  }
  hearth = fs::absolute(hearth).string();
  try {
    hearth::testing::TempDir dir;
    fs::path repo = dir.path / "repo";
    fs::create_directories(repo / ".hearth" / "workflows");
    const std::string run = "run = '" + step + "'\n";
    std::ofstream(repo / ".hearth" / "workflows" / "work.toml")
        << "name = \"work\"\n[on]\ngithub = [\"push\"]\n[sandbox]\nkind = \"local\"\n"
        << "[[steps]]\nid = \"a\"\n" << run << "[[steps]]\nid = \"b\"\nneeds = [\"a\"]\n" << run
        << "[[steps]]\nid = \"c\"\nneeds = [\"b\"]\n" << run;
    std::printf("%d deliveries, %d client threads, --jobs %d per worker; one run of 3 steps (`%s`) per delivery\n",
                deliveries, clients, jobs, step.c_str());
    Figures one;
    for (int w = 1; w <= max_workers; ++w) {
      Figures f = measure(hearth, repo, w, deliveries, clients, jobs);
      if (w == 1) one = f;
      std::printf("%d worker%s  accepted %7.0f deliveries/s (%.2fx one)   ran %7.0f steps/s (%.2fx one)\n", w,
                  w == 1 ? " " : "s", f.accepted_per_s, f.accepted_per_s / one.accepted_per_s, f.steps_per_s,
                  f.steps_per_s / one.steps_per_s);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pg_workers_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
