#include "tests/support/pg_server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

#include "tests/support/files.h"

namespace hearth::testing {

namespace {

namespace fs = std::filesystem;

std::runtime_error failure(const std::string& what) { return std::runtime_error("test PostgreSQL server: " + what); }

// Debian installs the server per major version; libpq-dev's pg_config names
// the bindir of its own version, which may not be the server's.
std::string find_bindir() {
  std::string from_config;
  if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
    char buf[512];
    if (fgets(buf, sizeof buf, p)) from_config = buf;
    ::pclose(p);
    while (!from_config.empty() && (from_config.back() == '\n' || from_config.back() == ' ')) from_config.pop_back();
  }
  if (!from_config.empty() && fs::exists(fs::path(from_config) / "initdb")) return from_config;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int version = std::atoi(e.path().filename().c_str());
    if (version > best_version && fs::exists(e.path() / "bin" / "initdb")) {
      best_version = version;
      best = (e.path() / "bin").string();
    }
  }
  if (best.empty())
    throw failure("no initdb found (pg_config --bindir, /usr/lib/postgresql/*/bin): install Debian's postgresql package");
  return best;
}

struct Account {
  std::string name;
  uid_t uid;
  gid_t gid;
};

// Who runs the server: hearth-test when we are root (created if missing),
// else ourselves.
Account server_account() {
  if (::geteuid() != 0) {
    const passwd* pw = ::getpwuid(::geteuid());
    if (!pw) throw failure("the test process's user has no name");
    return {pw->pw_name, pw->pw_uid, pw->pw_gid};
  }
  if (!::getpwnam("hearth-test") && std::system("useradd -M -s /usr/sbin/nologin hearth-test") != 0)
    throw failure("cannot create the user hearth-test (initdb refuses to run as root)");
  const passwd* pw = ::getpwnam("hearth-test");
  if (!pw) throw failure("no user hearth-test");
  return {pw->pw_name, pw->pw_uid, pw->pw_gid};
}

// Runs `argv` as `who`, its output appended to `log`; throws with the log's
// tail when it fails.
void run_as(const Account& who, const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw failure("cannot fork");
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0))
      _exit(126);
    // Opened as `who`: the server's own log is written by it too.
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string out = read_file(log);
    if (out.size() > 2000) out = out.substr(out.size() - 2000);
    throw failure(argv[0] + " failed (status " + std::to_string(status) + "):\n" + out);
  }
}

void exec_sql(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) throw failure(std::string("cannot connect: ") + PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()), &PQclear);
  auto st = PQresultStatus(res.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    throw failure("'" + sql + "' failed: " + PQerrorMessage(conn.get()));
}

}  // namespace

std::string PgServer::url(const std::string& db) const {
  return "postgresql:///" + db + "?host=" + dir_ + "&user=" + user_;
}

std::string PgServer::fresh_database() {
  std::string name = "t" + std::to_string(++databases_);
  exec_sql(url("postgres"), "CREATE DATABASE " + name);
  return url(name);
}

void PgServer::execute(const std::string& db_url, const std::string& sql) const { exec_sql(db_url, sql); }

void PgServer::start() {
  bindir_ = find_bindir();
  Account who = server_account();
  user_ = who.name;
  char tmpl[] = "/tmp/hearth-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) throw failure("cannot create a temporary directory");
  dir_ = tmpl;
  if (::chown(dir_.c_str(), who.uid, who.gid) != 0) throw failure("cannot give " + dir_ + " to " + who.name);
  std::string data = dir_ + "/data", log = dir_ + "/setup.log";
  // The cluster's creation need not survive a power loss (--no-sync); the
  // server's own commits keep every default.
  run_as(who, {bindir_ + "/initdb", "-D", data, "-U", who.name, "--auth=trust", "--no-sync", "--encoding=UTF8",
               "--locale=C"},
         log);
  std::ofstream(data + "/postgresql.conf", std::ios::app)
      << "listen_addresses = ''\nunix_socket_directories = '" << dir_
      << "'\nshared_buffers = 16MB\nmax_connections = 60\n";
  run_as(who, {bindir_ + "/pg_ctl", "start", "-w", "-s", "-D", data, "-l", dir_ + "/server.log"}, log);
  running_ = true;
}

void PgServer::restart(const std::function<void()>& while_down) {
  Account who = server_account();
  std::string data = dir_ + "/data", log = dir_ + "/setup.log";
  run_as(who, {bindir_ + "/pg_ctl", "stop", "-w", "-s", "-m", "fast", "-D", data}, log);
  running_ = false;
  std::exception_ptr thrown;
  if (while_down) {
    try {
      while_down();
    } catch (...) {
      thrown = std::current_exception();
    }
  }
  run_as(who, {bindir_ + "/pg_ctl", "start", "-w", "-s", "-D", data, "-l", dir_ + "/server.log"}, log);
  running_ = true;
  if (thrown) std::rethrow_exception(thrown);
}

PgServer::~PgServer() {
  if (running_) {
    try {
      // Immediate: the cluster is thrown away, no shutdown checkpoint needed.
      run_as(server_account(), {bindir_ + "/pg_ctl", "stop", "-w", "-s", "-m", "immediate", "-D", dir_ + "/data"},
             dir_ + "/setup.log");
    } catch (const std::exception&) {
      // At exit nothing can report it; the directory goes either way.
    }
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

PgServer& pg_server() {
  static std::unique_ptr<PgServer> server;
  if (!server) {
    std::unique_ptr<PgServer> s(new PgServer());
    s->start();
    server = std::move(s);
  }
  return *server;
}

}  // namespace hearth::testing
