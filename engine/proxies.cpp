#include "engine/proxies.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace hearth::engine {

namespace fs = std::filesystem;

bool uses_proxies(const workflows::Workflow& wf, const workflows::Step& step) {
  return wf.sandbox.network == "proxies" && (!step.proxies.empty() || !wf.sandbox.egress.empty());
}

Result<AttemptProxies> prepare_proxies(const workflows::Workflow& wf, const workflows::Step& step,
                                       const SecretValues& secrets) {
  AttemptProxies out;
  out.egress = wf.sandbox.egress;
  if (const char* ca = std::getenv("SSL_CERT_FILE"); ca && *ca) out.ca_file = ca;
  for (auto& name : step.proxies) {
    const proxy::ProxyDef* def = wf.proxy(name);
    if (!def) return Error{"the proxy '" + name + "' is not defined (a bug: the loader checks grants)"};
    commands::SecretSet check;  // only to refuse values too short to mask
    auto headers = proxy::render_headers(*def, [&](const std::string& secret) -> std::optional<std::string> {
      auto found = secrets.find(secret);
      if (found == secrets.end()) return std::nullopt;
      return found->second;
    });
    if (!headers) return Error{headers.message() + " in the engine's environment (read when the run started)"};
    for (auto& secret : def->secret_names())
      if (auto s = check.add(secret, secrets.count(secret) ? secrets.at(secret) : ""); !s.ok())
        return Error{"[proxies." + name + "]: " + s.message()};
    out.proxies.push_back({*def, std::move(*headers)});
  }
  return out;
}

Result<std::string> make_proxy_socket_dir(const std::string& preferred, const AttemptProxies& p) {
  size_t longest = std::string("/egress.sock").size();
  for (auto& sp : p.proxies) longest = std::max(longest, ("/proxy-" + sp.def.name + ".sock").size());
  std::error_code ec;
  if (preferred.size() + longest < sizeof(sockaddr_un{}.sun_path)) {
    fs::remove_all(preferred, ec);  // a previous engine's attempt of the same number
    fs::create_directories(fs::path(preferred).parent_path(), ec);
    if (ec || ::mkdir(preferred.c_str(), 0700) != 0)
      return Error{"cannot create the proxy socket directory " + preferred};
    return preferred;
  }
  char tmpl[] = "/tmp/hearth-proxies-XXXXXX";
  if (!::mkdtemp(tmpl)) return Error{std::string("cannot create a proxy socket directory under /tmp")};
  return std::string(tmpl);
}

void override_env(std::vector<std::string>& env, const std::vector<std::string>& extra) {
  auto name_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::erase_if(env, [&](const std::string& kv) {
    return std::any_of(extra.begin(), extra.end(), [&](const std::string& e) { return name_of(e) == name_of(kv); });
  });
  env.insert(env.end(), extra.begin(), extra.end());
}

}  // namespace hearth::engine
