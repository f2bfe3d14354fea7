// How a checkpoint of a skill or prompt step is kept in rows, whatever the
// backend: one row with the state minus its messages (and messages_count),
// one row per message. Both stores write and assemble through these.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace hearth::engine::checkpoint_rows {

/// The state's messages (an empty array when it has none).
const nlohmann::json& messages_of(const nlohmann::json& state);
/// The state without its messages: the header append_checkpoint takes.
nlohmann::json header_of(const nlohmann::json& state);
/// The checkpoint row's JSON for `header` and `count` stored messages.
nlohmann::json row_of(const nlohmann::json& header, size_t count);

/// Rebuilds the state as the harness handed it over from its row and its
/// message rows, fed in seq order.
class Assembler {
 public:
  Assembler(const std::string& step_id, int attempt, nlohmann::json row);
  /// The row is not an object: nothing to assemble.
  const std::string& broken() const { return broken_; }
  /// How many messages the row says it has (read those with seq < this).
  int64_t count() const { return count_; }
  /// One message row; the first problem found is kept.
  void add(int64_t seq, const std::string& message_text);
  Result<nlohmann::json> finish();

 private:
  std::string where_, broken_;
  nlohmann::json row_, messages_ = nlohmann::json::array();
  int64_t count_ = 0;
};

}  // namespace hearth::engine::checkpoint_rows
