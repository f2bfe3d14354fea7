// A temporary repository with `.hearth/workflows/` and the real `hearth
// serve` running in it on a free port, for the suites that test the server
// from outside (tests/support/http_client.h is their client).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/support/files.h"
#include "tests/support/hearth_process.h"
#include "tests/support/http_client.h"

namespace hearth::testing {

struct ServeFixture {
  TempDir dir;
  std::unique_ptr<HearthProcess> proc;
  int port = 0;

  ServeFixture() { std::filesystem::create_directories(root() / ".hearth" / "workflows"); }
  std::filesystem::path root() const { return dir.path; }
  std::filesystem::path state() const { return root() / ".hearth" / "state.db"; }
  /// Writes .hearth/workflows/<name>.toml.
  void workflow(const std::string& name, const std::string& toml) const {
    write_file(root() / ".hearth" / "workflows" / (name + ".toml"), toml);
  }

  /// Starts `hearth serve --listen <host>:0` with `extra` arguments and
  /// `env`, and waits until it says on which port it listens.
  void start_on(const std::string& host, const std::vector<std::string>& extra,
                const std::map<std::string, std::string>& env) {
    std::vector<std::string> args{"serve", "--listen", host + ":0", "--repo", root().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<HearthProcess>(Invocation{args, env, root()});
    std::string escaped = std::regex_replace(host, std::regex("\\."), "\\.");
    auto got = proc->wait_for_stdout(std::regex("listening on http://" + escaped + ":([0-9]+)"),
                                     std::chrono::seconds(10));
    BOOST_REQUIRE_MESSAGE(got, "hearth serve did not start listening");
    port = std::stoi(*got);
  }

  /// Sends `raw` on a new connection and returns the answer.
  HttpResponse send(const std::string& raw) {
    HttpClient c(port);
    c.send(raw);
    return c.response();
  }
};

}  // namespace hearth::testing
