// What an agent checkpoint costs the run store as a conversation grows:
// each turn adds two messages (the assistant's tool call and its result,
// ~`bytes` each) and is checkpointed twice, as the engine does. Two ways:
//   append: the new messages as rows, plus the small state row (what the
//           engine does: Store::append_checkpoint);
//   whole:  the whole state in one row every time (Store::save_checkpoint
//           with every message, what schema 5 did).
// Each checkpoint is one transaction with synchronous=FULL (one fsync), as
// in a run. Prints per-checkpoint p50 for the first and last 20 turns.
//
//   build/bench/checkpoint_bench [turns=200] [bytes=300]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/store.h"

using hearth::Status;
using hearth::engine::Store;
using Clock = std::chrono::steady_clock;

namespace {

double p50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

nlohmann::json message(int i, int bytes) {
  return {{"role", i % 2 ? "user" : "assistant"}, {"content", std::string(static_cast<size_t>(bytes), 'a' + i % 26)}};
}

// Per-checkpoint milliseconds of one conversation of `turns` turns.
std::vector<double> run(Store& store, const std::string& run_id, bool append, int turns, int bytes) {
  nlohmann::json header = {{"hearth_agent_state", 1}, {"system", std::string(2000, 's')}, {"turns", 0}};
  nlohmann::json messages = nlohmann::json::array();
  messages.push_back(message(1, bytes));
  std::vector<double> ms;
  size_t stored = 0;
  for (int t = 1; t <= turns; ++t) {
    for (int half = 0; half < 2; ++half) {  // the intent, then the turn complete
      messages.push_back(message(static_cast<int>(messages.size()), bytes));
      header["turns"] = t;
      auto start = Clock::now();
      (void)store.begin();
      Status s;
      if (append) {
        nlohmann::json fresh = nlohmann::json::array();
        for (size_t i = stored; i < messages.size(); ++i) fresh.push_back(messages[i]);
        s = store.append_checkpoint(run_id, "agent", 1, t, header, fresh, stored);
      } else {
        nlohmann::json state = header;
        state["messages"] = messages;
        s = store.save_checkpoint(run_id, "agent", 1, t, state);
      }
      if (!s.ok() || !store.commit().ok()) {
        std::fprintf(stderr, "checkpoint failed: %s\n", s.ok() ? "commit" : s.message().c_str());
        std::exit(1);
      }
      stored = messages.size();
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int turns = argc > 1 ? std::atoi(argv[1]) : 200;
  int bytes = argc > 2 ? std::atoi(argv[2]) : 300;
  auto dir = std::filesystem::temp_directory_path() / ("hearth-checkpoint-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto store = Store::open((dir / "state.db").string());
  if (!store) {
    std::fprintf(stderr, "%s\n", store.message().c_str());
    return 1;
  }
  std::printf("%d turns, 2 checkpoints a turn, messages of %d bytes, synchronous=FULL\n", turns, bytes);
  for (bool append : {true, false}) {
    auto ms = run(**store, append ? "append" : "whole", append, turns, bytes);
    size_t edge = std::min<size_t>(40, ms.size() / 2);
    std::vector<double> first(ms.begin(), ms.begin() + static_cast<long>(edge));
    std::vector<double> last(ms.end() - static_cast<long>(edge), ms.end());
    std::printf("%-7s checkpoint p50: first 20 turns %.3f ms, last 20 turns %.3f ms, all %.3f ms\n",
                append ? "append" : "whole", p50(first), p50(last), p50(ms));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
