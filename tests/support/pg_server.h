// A real PostgreSQL server for the tests: initdb into a temporary directory,
// `pg_ctl start` listening on a Unix socket in that directory only (no TCP),
// run as the unprivileged user hearth-test when the tests run as root
// (initdb refuses root; the user is created if missing) and as the test
// process's own user otherwise. Started once per test process, at the first
// pg_server() call, shared by every suite, stopped (and its directory
// removed) when the process exits. Each test takes a database of its own
// (fresh_database). The server keeps PostgreSQL's defaults for durability
// (fsync, synchronous_commit, full_page_writes); only its memory is small.
//
// The binaries are Debian's: `pg_config --bindir`, else the newest
// /usr/lib/postgresql/<version>/bin with initdb in it. A machine without
// them fails the test that asks, with the package to install.
#pragma once

#include <functional>
#include <string>

namespace hearth::testing {

class PgServer {
 public:
  /// The socket directory: libpq's host for a Unix socket.
  const std::string& socket_dir() const { return dir_; }
  /// The role the tests connect as (the server's superuser).
  const std::string& user() const { return user_; }
  /// A connection URL for database `db` on this server.
  std::string url(const std::string& db) const;
  /// Creates a new, empty database (named after a counter) and returns its
  /// URL. Throws std::runtime_error naming the cause when it cannot.
  std::string fresh_database();
  /// Runs `sql` as the superuser on database `db` (throws on failure): for
  /// a test that writes what no hearth would (a newer schema version).
  void execute(const std::string& db_url, const std::string& sql) const;
  /// Stops the server the way an operator restarting it does (`pg_ctl stop
  /// -m fast`: every session is ended, what was committed stays), calls
  /// `while_down` (if given), and starts it again on the same data and
  /// socket, also when `while_down` throws (which is then rethrown). Throws
  /// when it cannot.
  void restart(const std::function<void()>& while_down = {});

  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

 private:
  PgServer() = default;
  void start();
  friend PgServer& pg_server();

  std::string bindir_, dir_, user_;
  int databases_ = 0;
  bool running_ = false;
};

/// The server of this test process, started at the first call. Throws
/// std::runtime_error naming the cause when it cannot start.
PgServer& pg_server();

}  // namespace hearth::testing
