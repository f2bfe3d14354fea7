// The engine-side proxy on a fresh loop, started from workflow TOML with a
// stand-in secret; events are collected. The loop must close cleanly.
#pragma once

#include <boost/test/unit_test.hpp>

#include "proxy/server.h"
#include "tests/engine/fixture.h"
#include "tests/support/loop.h"
#include "tests/support/upstream.h"
#include "workflows/proxies.h"

namespace hearth::testing {

using namespace hearth::proxy;

/// A read-only proxy named github whose upstream is "UPSTREAM" (see start()),
/// with the token in its Authorization header.
inline const char* kGithub = R"(
[proxies.github]
upstream = "UPSTREAM"
headers = { Authorization = "Bearer ${{ secrets.GH_TOKEN }}" }
policy = "read-only"
)";

inline const std::string kToken = "ghp_S3cretT0kenValue4242";

struct ProxyFixture : LoopFixture {
  TempDir dir;
  ProxyServer* server = nullptr;
  std::vector<ProxyEvent> events;

  ~ProxyFixture() { stop(); }

  void stop() {
    if (!server) return;
    bool closed = false;
    server->close([&] { closed = true; });
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(closed);
    server = nullptr;
  }

  // `toml` with every "UPSTREAM" replaced by `url`.
  void start(std::string toml, const std::string& url, std::string ca_file = "", ProxyLimits limits = {}) {
    for (size_t at; (at = toml.find("UPSTREAM")) != std::string::npos;) toml.replace(at, 8, url);
    auto cfg = workflows::parse_proxy_config_text(toml, "wf.toml");
    BOOST_REQUIRE_MESSAGE(cfg.ok(), (cfg.ok() ? "" : cfg.message()));
    auto secrets = std::make_shared<hearth::commands::SecretSet>();
    BOOST_REQUIRE(secrets->add("GH_TOKEN", kToken).ok());
    ProxyServerOptions o;
    o.socket_dir = dir.str();
    for (auto& def : cfg->proxies) {
      auto headers = render_headers(def, [](const std::string& n) {
        return n == "GH_TOKEN" ? std::optional<std::string>(kToken) : std::nullopt;
      });
      BOOST_REQUIRE(headers.ok());
      o.proxies.push_back({def, *headers});
    }
    o.egress = cfg->egress;
    o.secrets = secrets;
    o.ca_file = std::move(ca_file);
    o.limits = limits;
    o.on_event = [this](const ProxyEvent& e) { events.push_back(e); };
    auto s = ProxyServer::start(&loop, std::move(o));
    BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.message()));
    server = *s;
  }

  std::string sock(const std::string& name) const {
    return (dir.path / (name == "egress" ? "egress.sock" : "proxy-" + name + ".sock")).string();
  }
  std::string send(const std::string& name, const std::string& raw, bool half_close = false) {
    return while_loop_runs(&loop, [&] { return raw_exchange(sock(name), raw, half_close); });
  }
  std::string request(const std::string& name, const std::string& method, const std::string& path,
                      const std::string& body = "", const std::string& headers = "") {
    std::string raw = method + " " + path + " HTTP/1.1\r\nHost: proxy\r\n" + headers;
    if (!body.empty() || method == "POST") raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return send(name, raw + "Connection: close\r\n\r\n" + body);
  }
};

}  // namespace hearth::testing
