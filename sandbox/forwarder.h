// Private to sandbox/: the engine's end of a namespace sandbox's loopback
// forwards (Isolation::forwards). The sandbox's child creates a listening
// socket on 127.0.0.1:<port> inside the sandbox's own network namespace and
// hands it to the engine before it execs; the engine accepts on it from its
// loop and splices each connection to a new connection to the forward's
// Unix socket on the host. Nothing of the engine runs inside the sandbox, and
// the Unix socket itself is not visible there.
#pragma once

#include <uv.h>

#include <set>
#include <string>
#include <vector>

#include "util/status.h"

namespace hearth::sandbox {

class Forwarder {
 public:
  struct Listener {
    int fd = -1;         // a listening TCP socket (owned from start() on)
    std::string socket;  // host path of the Unix socket to connect to
  };
  /// Accepts on every listener. Takes the fds even on error (closes them).
  /// Lives on the heap until close() has finished.
  static Result<Forwarder*> start(uv_loop_t* loop, std::vector<Listener> listeners);
  /// Closes the listeners and cuts every connection, then frees itself. Once.
  void close();

  /// Connections open at once per forwarder; more are closed on accept.
  static constexpr size_t kMaxConnections = 256;

 private:
  struct Port;
  struct Conn;
  explicit Forwarder(uv_loop_t* loop) : loop_(loop) {}
  ~Forwarder() = default;
  static void on_connection(uv_stream_t* server, int status) noexcept;
  void handle_closed();

  uv_loop_t* loop_;
  std::vector<Port*> ports_;
  std::set<Conn*> conns_;
  int open_handles_ = 0;  // listeners not yet closed
  bool closing_ = false;
};

}  // namespace hearth::sandbox
