#include "engine/checkpoint_rows.h"

namespace hearth::engine::checkpoint_rows {

const nlohmann::json& messages_of(const nlohmann::json& state) {
  static const nlohmann::json kNone = nlohmann::json::array();
  auto messages = state.find("messages");
  return messages != state.end() && messages->is_array() ? *messages : kNone;
}

nlohmann::json header_of(const nlohmann::json& state) {
  nlohmann::json header = nlohmann::json::object();
  for (auto it = state.begin(); it != state.end(); ++it)
    if (it.key() != "messages") header[it.key()] = it.value();
  return header;
}

nlohmann::json row_of(const nlohmann::json& header, size_t count) {
  nlohmann::json row = header;
  row.erase("messages_saved");  // the writer's bookkeeping, not the conversation's
  row["messages_count"] = count;
  return row;
}

Assembler::Assembler(const std::string& step_id, int attempt, nlohmann::json row)
    : where_("the checkpoint of step '" + step_id + "' attempt " + std::to_string(attempt)), row_(std::move(row)) {
  if (!row_.is_object()) {
    broken_ = where_ + " is not valid JSON";
    return;
  }
  count_ = row_.value("messages_count", int64_t{0});
  row_.erase("messages_count");
}

void Assembler::add(int64_t seq, const std::string& message_text) {
  if (!broken_.empty()) return;
  if (seq != static_cast<int64_t>(messages_.size())) {
    broken_ = where_ + " misses message " + std::to_string(messages_.size());
  } else if (auto m = nlohmann::json::parse(message_text, nullptr, /*allow_exceptions=*/false); m.is_discarded()) {
    broken_ = where_ + ": message " + std::to_string(messages_.size()) + " is not valid JSON";
  } else {
    messages_.push_back(std::move(m));
  }
}

Result<nlohmann::json> Assembler::finish() {
  if (!broken_.empty()) return Error{broken_};
  if (static_cast<int64_t>(messages_.size()) != count_)
    return Error{where_ + " holds " + std::to_string(messages_.size()) + " of its " + std::to_string(count_) +
                 " messages"};
  row_["messages"] = std::move(messages_);
  return std::move(row_);
}

}  // namespace hearth::engine::checkpoint_rows
