// A git server on 127.0.0.1 for tests of granted pushes: the real
// `git http-backend` (CGI) behind a small HTTP/1.1 server on a thread. It
// serves the bare repositories under `root` (GIT_PROJECT_ROOT) and answers
// 401 (Basic) to every request without the expected user and token, so a
// push succeeds only from a git that holds the token.
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hearth::testing {

class GitHttpServer {
 public:
  GitHttpServer(std::filesystem::path root, std::string user, std::string token);
  ~GitHttpServer();
  GitHttpServer(const GitHttpServer&) = delete;
  GitHttpServer& operator=(const GitHttpServer&) = delete;

  /// http://127.0.0.1:PORT/<repo> (repo relative to root, e.g. "remote.git").
  std::string url(const std::string& repo) const;
  int port() const { return port_; }
  /// Requests that carried the expected credentials and reached git.
  int authorized_requests() const { return authorized_; }
  /// Every request line received ("GET /remote.git/info/refs?...").
  std::vector<std::string> request_lines();

 private:
  void serve(int fd);
  std::filesystem::path root_;
  std::string expected_auth_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> authorized_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread acceptor_;
};

}  // namespace hearth::testing
