// The shim: `hearth` invoked inside the sandbox under a granted command's
// name. Plain blocking I/O with poll(2): it runs once per call and must
// start fast.
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "commands/broker.h"
#include "commands/protocol.h"
#include "util/write_all.h"

namespace hearth::commands {

namespace {

using util::write_all;

// To the broker: as a socket, so a broker that has already answered and
// closed (a refusal) is an error here, not a SIGPIPE.
bool send_frame(int fd, FrameType t, std::string_view payload) {
  std::string f = encode_frame(t, payload);
  return write_all(fd, f.data(), f.size(), true);
}

int fail(const std::string& name, const std::string& why) {
  std::string msg = "hearth: ";  // appended piecewise: GCC 12 warns falsely on a chain of +
  msg.append(name).append(": ").append(why).append("\n");
  (void)write_all(2, msg.data(), msg.size());
  return 127;
}

// The environment the shim passes on: what a program's output format depends on.
nlohmann::json passed_env() {
  nlohmann::json env = nlohmann::json::object();
  for (const char* name : {"LANG", "LC_ALL", "TERM", "NO_COLOR"})
    if (const char* v = getenv(name)) env[name] = v;
  return env;
}

}  // namespace

int run_shim(int argc, char** argv, const std::string& socket_path, const std::string& workspace_root) {
  std::string name = std::filesystem::path(argv[0]).filename().string();
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return fail(name, "the broker socket path is too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (sock < 0 || ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
  {
    std::string why = "cannot reach Hearth's command broker at ";
    why.append(socket_path).append(" (").append(std::strerror(errno));
    why.append("): granted commands work only inside a step that grants them");
    return fail(name, why);
  }

  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  std::string rel(1, '.');
  if (!ec) {
    std::string r = std::filesystem::path(cwd).lexically_relative(workspace_root).string();
    if (!r.empty() && r.rfind("..", 0) != 0) rel = std::move(r);
  }
  nlohmann::json req{{"argv", nlohmann::json::array()}, {"cwd", rel}, {"env", passed_env()}};
  req["argv"].push_back(name);
  for (int i = 1; i < argc; ++i) req["argv"].push_back(argv[i]);
  std::string payload = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (payload.size() > kMaxPayload) return fail(name, "the arguments are too long");
  if (!send_frame(sock, FrameType::request, payload)) return fail(name, "the broker closed the connection");

  FrameReader reader;
  bool stdin_open = true;
  std::string buf(65536, '\0');
  for (;;) {
    pollfd fds[2] = {{sock, POLLIN, 0}, {0, static_cast<short>(stdin_open ? POLLIN : 0), 0}};
    int n = ::poll(fds, stdin_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(name, std::string("poll: ") + std::strerror(errno));
    }
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = ::read(0, buf.data(), buf.size());
      if (r > 0) {
        if (!send_frame(sock, FrameType::stdin_data, std::string_view(buf.data(), static_cast<size_t>(r))))
          stdin_open = false;
      } else if (r == 0 || errno != EINTR) {
        stdin_open = false;
        (void)send_frame(sock, FrameType::stdin_eof, "");
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(sock, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return fail(name, "the broker closed the connection before the command ended");
      if (!reader.push(std::string_view(buf.data(), static_cast<size_t>(r))).ok())
        return fail(name, "the broker sent a malformed frame");
      while (auto f = reader.next()) {
        switch (f->type) {
          case FrameType::stdout_data: (void)write_all(1, f->payload.data(), f->payload.size()); break;
          case FrameType::stderr_data: (void)write_all(2, f->payload.data(), f->payload.size()); break;
          case FrameType::exit: {
            auto j = nlohmann::json::parse(f->payload, nullptr, false);
            int code = j.is_object() && j.value("code", nlohmann::json(1)).is_number_integer() ? j["code"].get<int>() : 1;
            ::close(sock);
            return code;
          }
          default: return fail(name, "the broker sent an unexpected frame");
        }
      }
    }
  }
}

}  // namespace hearth::commands
