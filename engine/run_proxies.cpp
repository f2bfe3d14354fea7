// A run's API proxies: per attempt, the rendered proxies (proxies.h), the
// ProxyServer on the engine's loop, and one event per proxied request.
#include <filesystem>
#include <utility>

#include "engine/run.h"

namespace hearth::engine {

Status Run::prepare_proxies_for(StepState& st) {
  st.proxies.reset();
  if (!isolated() || !uses_proxies(wf_, *st.def)) return {};
  auto p = prepare_proxies(wf_, *st.def, secret_values_);
  if (!p) return p.error();
  st.proxies = std::move(*p);
  st.spec.isolation.network = sandbox::Network::proxies;
  return {};
}

Status Run::start_proxies(StepState& st) {
  if (!st.proxies) return {};
  std::string preferred = grants_root() + "/" + st.rec.id + "." + std::to_string(st.attempt.number) + ".proxies";
  auto dir = make_proxy_socket_dir(preferred, *st.proxies);
  if (!dir) return dir.error();
  st.proxies->socket_dir = *dir;
  proxy::ProxyServerOptions o;
  o.socket_dir = *dir;
  o.proxies = st.proxies->proxies;
  o.egress = st.proxies->egress;
  o.secrets = secrets_;
  o.ca_file = st.proxies->ca_file;
  StepState* sp = &st;  // steps_ never reallocates after begin()
  std::weak_ptr<bool> alive = alive_;
  int attempt = st.attempt.number;
  o.on_event = [this, sp, alive, attempt](const proxy::ProxyEvent& e) {
    if (auto a = alive.lock(); a && *a) record_proxy_event(*sp, attempt, e);
  };
  auto server = proxy::ProxyServer::start(engine_.loop_, std::move(o));
  if (!server) {
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
    return Error{"cannot start the step's proxies: " + server.message()};
  }
  st.proxy_server = *server;
  auto& iso = st.spec.isolation;
  iso.forwards = st.proxy_server->forwards();
  override_env(st.spec.env, st.proxy_server->environment());
  return {};
}

void Run::close_proxies(StepState& st) {
  if (!st.proxy_server) return;
  std::string dir = st.proxies ? st.proxies->socket_dir : "";
  proxy::ProxyServer* server = std::exchange(st.proxy_server, nullptr);  // close() may emit events
  server->close([dir] {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  });
}

// Committed as it happens, like the command journal: the request has been
// answered already, so there is no intent to record first.
void Run::record_proxy_event(StepState& st, int attempt, const proxy::ProxyEvent& e) {
  if (finishing_ || !fatal_.ok()) return;
  nlohmann::json data = {{"attempt", attempt},
                         {"proxy", e.proxy},
                         {"method", e.method},
                         {"path", e.path},
                         {"status", e.status},
                         {"decision", e.decision},
                         {"rule", e.rule},
                         {"request_bytes", e.request_bytes},
                         {"response_bytes", e.response_bytes},
                         {"duration_ms", static_cast<double>(e.duration.count()) / 1000.0}};
  commit_now([&] { return event(event_type::proxy_request, st.rec.id, std::move(data)); });
}

}  // namespace hearth::engine
