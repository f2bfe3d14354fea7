// What a public hearth::Engine holds: the store, the two sandbox backends and
// the engine's own Engine on the host's loop. Private to api/: the other
// parts of the public API built on an Engine (the webhook server) reach its
// store and engine through it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "engine/store.h"
#include "hearth/engine.h"
#include "sandbox/sandbox.h"

namespace hearth::detail {

struct EngineImpl : engine::Observer {
  uv_loop_t* loop = nullptr;
  EngineOptions options;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<sandbox::Sandbox> local;
  std::unique_ptr<sandbox::Sandbox> isolated;  // the namespace backend, or its refusing stand-in
  std::unique_ptr<engine::Engine> engine;
  uint64_t next_id = 1;
  std::map<uint64_t, EventCallback> event_callbacks;
  std::map<uint64_t, OutputCallback> output_callbacks;
  std::vector<std::function<void()>> drained;  // shutdown() callbacks waiting for the last run

  void on_event(const engine::EventRecord& e) override;
  void on_output(const std::string& run_id, const std::string& step_id, std::string_view chunk) override;
  /// `done`, then the shutdown() callbacks once no run is left.
  std::function<void(const RunResult&)> finished(FinishedCallback done);
  void maybe_drained();
};

/// The implementation behind a public Engine.
EngineImpl& impl_of(Engine& engine);

}  // namespace hearth::detail
