#include "tests/support/git_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

#include "tests/support/parsed_request.h"

namespace hearth::testing {

namespace {

std::string base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void write_all(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Runs `git http-backend` for one request; returns its CGI output.
std::string run_backend(const std::filesystem::path& root, const ParsedRequest& r) {
  std::string path = r.url, query;
  if (auto q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path.resize(q);
  }
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return "";
  std::vector<std::string> env = {"GIT_PROJECT_ROOT=" + root.string(), "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=pusher",
                                  "REQUEST_METHOD=" + r.method, "PATH_INFO=" + path, "QUERY_STRING=" + query,
                                  "CONTENT_TYPE=" + r.header("content-type"), "CONTENT_LENGTH=" + std::to_string(r.body.size()),
                                  "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root.string(), "PATH=/usr/bin:/bin"};
  std::vector<char*> envp;  // made before fork: the test process has threads
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* argv[] = {"git", "http-backend", nullptr};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execve("/usr/bin/git", const_cast<char**>(argv), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  std::thread feeder([fd = in[1], body = r.body] {
    write_all(fd, body);
    ::close(fd);
  });
  std::string cgi;
  char buf[65536];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) cgi.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  feeder.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  return cgi;
}

// The CGI output as an HTTP response: its `Status:` header (else 200), its
// other headers, and its body with a Content-Length.
std::string http_response(const std::string& cgi) {
  size_t end = cgi.find("\r\n\r\n");
  size_t skip = 4;
  if (end == std::string::npos) {
    end = cgi.find("\n\n");
    skip = 2;
  }
  if (end == std::string::npos) return "HTTP/1.1 500 Bad CGI\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  std::string head = cgi.substr(0, end), body = cgi.substr(end + skip), status = "200 OK", headers;
  size_t start = 0;
  while (start < head.size()) {
    size_t e = head.find('\n', start);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(start, e - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("Status:", 0) == 0) status = line.substr(line.find_first_not_of(' ', 7));
    else if (!line.empty()) headers += line + "\r\n";
    start = e + 1;
  }
  return "HTTP/1.1 " + status + "\r\n" + headers + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

GitHttpServer::GitHttpServer(std::filesystem::path root, std::string user, std::string token)
    : root_(std::move(root)), expected_auth_("Basic " + base64(user + ":" + token)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("git stand-in: cannot listen on 127.0.0.1");
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve(fd);  // one at a time: git sends its requests in turn
      ::close(fd);
    }
  });
}

GitHttpServer::~GitHttpServer() {
  stopping_ = true;
  acceptor_.join();
  ::close(listen_fd_);
}

std::string GitHttpServer::url(const std::string& repo) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + repo;
}

std::vector<std::string> GitHttpServer::request_lines() {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void GitHttpServer::serve(int fd) {
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  ParsedRequest r;
  parser.data = &r;
  char buf[65536];
  while (!r.complete) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    http_parser_execute(&parser, &request_parser_settings(), buf, static_cast<size_t>(n));
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK && !r.complete) return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(r.method + " " + r.url);
  }
  if (r.header("authorization") != expected_auth_)
    return write_all(fd, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"stand-in\"\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
  ++authorized_;
  write_all(fd, http_response(run_backend(root_, r)));
}

}  // namespace hearth::testing
