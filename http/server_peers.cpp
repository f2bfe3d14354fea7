// HttpServer's budgets per peer: connection slots shared fairly, and the
// request bytes held before a handler has checked them.
#include "http/server_connection.h"

namespace hearth::http {

void HttpServer::peer_closed(const std::string& peer) {
  --live_connections_;
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  if (--it->second.connections == 0 && it->second.pending_body_bytes == 0) peers_.erase(it);
}

bool HttpServer::make_room_for(const std::string& peer) {
  if (live_connections_ < limits_.max_connections) return true;
  // The peer holding the most slots gives one up, if it holds more than the
  // newcomer's peer would after this connection.
  const std::string* greedy = nullptr;
  size_t most = 0;
  for (auto& [key, p] : peers_) {
    if (p.connections > most) {
      most = p.connections;
      greedy = &key;
    }
  }
  auto mine = peers_.find(peer);
  size_t own = mine == peers_.end() ? 0 : mine->second.connections;
  if (!greedy || most <= own + 1) return false;
  // Its oldest connection that is only waiting for bytes (never one whose
  // request the handler is answering, nor a stream).
  Connection* victim = nullptr;
  for (Connection* c : connections_) {
    if (c->peer_key() == *greedy && c->waiting() && (!victim || c->seq() < victim->seq())) victim = c;
  }
  if (!victim) return false;
  victim->close_now();
  return true;
}

bool HttpServer::hold_body_bytes(Connection* c, size_t n) {
  Peer& p = peers_[c->peer_key()];
  if (p.pending_body_bytes + n > limits_.max_peer_pending_body_bytes) return false;
  while (pending_body_bytes_ + n > limits_.max_pending_body_bytes) {
    // Make room by refusing the largest body held, unless it is this one.
    Connection* largest = nullptr;
    for (Connection* other : connections_) {
      if (other->held() > 0 && other->waiting() && (!largest || other->held() > largest->held())) largest = other;
    }
    if (!largest || largest == c || largest->held() <= c->held() + n) return false;
    largest->refuse(429, "the server holds too many request bytes waiting to be checked; this request was the "
                         "largest; send again later");
  }
  p.pending_body_bytes += n;
  pending_body_bytes_ += n;
  return true;
}

void HttpServer::release_body_bytes(const std::string& peer, size_t n) {
  pending_body_bytes_ -= n;
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  it->second.pending_body_bytes -= n;
  if (it->second.connections == 0 && it->second.pending_body_bytes == 0) peers_.erase(it);
}

}  // namespace hearth::http
