#include "engine/ids.h"

#include <uv.h>

#include <chrono>
#include <ctime>

namespace hearth::engine {

std::string new_run_id() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  unsigned char bytes[3] = {0, 0, 0};
  uv_random(nullptr, nullptr, bytes, sizeof bytes, 0, nullptr);
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%02x%02x%02x", bytes[0], bytes[1], bytes[2]);
  return std::string(stamp) + "-" + suffix;
}

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace hearth::engine
