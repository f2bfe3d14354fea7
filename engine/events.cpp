#include "engine/events.h"

namespace hearth::engine {

std::string event_to_json_line(const EventRecord& e) {
  nlohmann::json j = {{"run", e.run_id}, {"seq", e.seq}, {"at", e.at}, {"type", e.type}};
  if (!e.step_id.empty()) j["step"] = e.step_id;
  j["data"] = e.data;
  // Replace invalid UTF-8 (from program output) rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hearth::engine
