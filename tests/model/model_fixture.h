// A fresh libuv loop, the stand-in model server, and a helper that runs one
// request to its end. The loop must close cleanly: a leaked handle fails.
#pragma once

#include <uv.h>

#include <boost/test/unit_test.hpp>

#include "model/client.h"
#include "tests/support/loop.h"
#include "tests/support/model_server.h"

namespace hearth::model {
inline std::ostream& operator<<(std::ostream& os, StopReason r) { return os << to_string(r); }
inline std::ostream& operator<<(std::ostream& os, ErrorKind k) { return os << to_string(k); }
}  // namespace hearth::model

namespace hearth::testing {

/// The error message of a failed outcome ("" when it succeeded).
inline std::string why(const model::Outcome& o) { return o.ok() ? std::string() : o.error->message; }

struct ModelFixture : LoopFixture {
  ModelServer server;
  std::unique_ptr<model::Client> client;

  ~ModelFixture() { client.reset(); }

  model::ClientOptions options(const std::string& provider) {
    model::ClientOptions o;
    o.base_url = provider == "openai" ? server.url() + "/v1" : server.url();
    o.api_key = "sk-test-" + provider + "-0123456789";
    o.backoff_base = std::chrono::milliseconds(5);
    o.backoff_max = std::chrono::milliseconds(2000);
    return o;
  }

  void make(const std::string& spec, model::ClientOptions o) {
    auto c = model::make_client(&loop, spec, std::move(o));
    BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? std::string() : c.message()));
    client = std::move(*c);
  }
  void make(const std::string& provider) { make(provider + "/test-model", options(provider)); }

  /// Runs the loop until every outcome is in (or 20 s pass: a hang fails loudly).
  void run_until(const std::function<bool()>& finished) { run_loop_until(&loop, finished); }

  /// Sends one request and waits for its outcome. `stream` may carry deltas.
  model::Outcome send(model::Request req, model::Stream stream = {}) {
    std::optional<model::Outcome> out;
    stream.on_done = [&](model::Outcome o) { out = std::move(o); };
    client->send(std::move(req), std::move(stream));
    run_until([&] { return out.has_value(); });
    return std::move(*out);
  }
};

inline model::Request hello(std::string text = "Hello") {
  model::Request r;
  r.system = "You are terse.";
  r.messages.push_back(model::user_text(std::move(text)));
  r.max_tokens = 256;
  return r;
}

}  // namespace hearth::testing
