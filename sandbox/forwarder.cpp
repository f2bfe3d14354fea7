#include "sandbox/forwarder.h"

#include <unistd.h>

#include <cstring>

#include "sandbox/splice.h"

namespace hearth::sandbox {

struct Forwarder::Port {
  uv_tcp_t tcp{};
  std::string socket;
  Forwarder* owner = nullptr;
};

// One connection from inside the sandbox and its twin to the Unix socket.
// Owns both handles; deletes itself after both have closed.
struct Forwarder::Conn {
  uv_tcp_t in{};
  uv_pipe_t out{};
  uv_connect_t connect{};
  Splice splice;
  Forwarder* owner = nullptr;
  int handles = 0;
  bool closing = false;

  void close() {
    if (closing) return;
    closing = true;
    splice.cut("closed");
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&in), reinterpret_cast<uv_handle_t*>(&out)})
      if (h->type != UV_UNKNOWN_HANDLE) uv_close(h, &Conn::on_closed);
  }

  static void on_closed(uv_handle_t* h) noexcept {
    auto* c = static_cast<Conn*>(h->data);
    if (--c->handles > 0) return;
    Forwarder* f = c->owner;
    f->conns_.erase(c);
    delete c;
    f->handle_closed();
  }

  static void on_connected(uv_connect_t* req, int status) noexcept {
    auto* c = static_cast<Conn*>(req->data);
    if (c->closing) return;
    if (status < 0) return c->close();  // the sandbox's client sees the connection end
    c->splice.start(reinterpret_cast<uv_stream_t*>(&c->in), reinterpret_cast<uv_stream_t*>(&c->out), {},
                    [c](Status, const Splice::Totals&) { c->close(); });
  }
};

Result<Forwarder*> Forwarder::start(uv_loop_t* loop, std::vector<Listener> listeners) {
  auto* f = new Forwarder(loop);
  std::string error;
  for (auto& l : listeners) {
    if (!error.empty()) {
      ::close(l.fd);
      continue;
    }
    auto* p = new Port;
    p->owner = f;
    p->socket = l.socket;
    uv_tcp_init(loop, &p->tcp);
    p->tcp.data = p;
    f->ports_.push_back(p);
    ++f->open_handles_;
    int rc = uv_tcp_open(&p->tcp, l.fd);
    if (rc != 0) ::close(l.fd);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&p->tcp), 128, &Forwarder::on_connection);
    if (rc != 0) error = std::string("cannot accept on a forwarded port: ") + uv_strerror(rc);
  }
  if (!error.empty()) {
    f->close();
    return Error{error};
  }
  return f;
}

void Forwarder::on_connection(uv_stream_t* server, int status) noexcept {
  auto* port = static_cast<Port*>(server->data);
  Forwarder* f = port->owner;
  if (status < 0 || f->closing_) return;
  auto* c = new Conn;
  c->owner = f;
  f->conns_.insert(c);
  uv_tcp_init(f->loop_, &c->in);
  c->in.data = c;
  ++c->handles;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->in)) != 0 || f->conns_.size() > kMaxConnections)
    return c->close();
  uv_tcp_nodelay(&c->in, 1);
  uv_pipe_init(f->loop_, &c->out, 0);
  c->out.data = c;
  ++c->handles;
  c->connect.data = c;
  uv_pipe_connect(&c->connect, &c->out, port->socket.c_str(), &Conn::on_connected);
}

void Forwarder::close() {
  if (closing_) return;
  closing_ = true;
  for (Port* p : ports_)
    uv_close(reinterpret_cast<uv_handle_t*>(&p->tcp), [](uv_handle_t* h) noexcept {
      auto* port = static_cast<Port*>(h->data);
      Forwarder* f = port->owner;
      delete port;
      --f->open_handles_;
      f->handle_closed();
    });
  ports_.clear();
  std::set<Conn*> open = conns_;
  for (Conn* c : open) c->close();
  handle_closed();
}

void Forwarder::handle_closed() {
  if (closing_ && open_handles_ == 0 && conns_.empty()) delete this;
}

}  // namespace hearth::sandbox
