#include "workflows/duration.h"

#include <cstdio>
#include <string>

namespace hearth::workflows {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  using std::chrono::milliseconds;
  auto bad = [&](std::string why) {
    return Error{"invalid duration '" + std::string(text) + "': " + why +
                 " (write e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\")"};
  };
  if (text.empty()) return bad("empty");
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == start) return bad("expected a number at position " + std::to_string(start + 1));
    double number = 0;
    try {
      number = std::stod(std::string(text.substr(start, i - start)));
    } catch (...) {
      return bad("bad number");
    }
    size_t unit_start = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") total_ms += number;
    else if (unit == "s") total_ms += number * 1e3;
    else if (unit == "m") total_ms += number * 60e3;
    else if (unit == "h") total_ms += number * 3600e3;
    else if (unit.empty()) return bad("missing unit (ms, s, m or h)");
    else return bad("unknown unit '" + std::string(unit) + "' (use ms, s, m or h)");
  }
  if (total_ms < 1) return bad("must be at least 1ms");
  if (total_ms > 30.0 * 24 * 3600e3) return bad("must be under 30 days");
  return milliseconds(static_cast<int64_t>(total_ms));
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>((ms / 1000) % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>((ms / 60'000) % 60));
  }
  return buf;
}

}  // namespace hearth::workflows
