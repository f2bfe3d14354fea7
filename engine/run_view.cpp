#include "engine/run_view.h"

#include <ctime>

#include "engine/engine.h"

namespace hearth::engine {

namespace {
nlohmann::json opt(const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
}  // namespace

std::string iso_utc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string shown_status(const RunRecord& r) {
  return r.status == RunStatus::running && !lease_alive(r) ? "interrupted" : to_string(r.status);
}

nlohmann::json run_summary_json(const RunRecord& r) {
  return {{"id", r.id},
          {"workflow", r.workflow},
          {"workflow_path", r.workflow_path},
          {"workflow_hash", r.workflow_hash},
          {"status", shown_status(r)},
          {"started_at", iso_utc(r.created_at)},
          {"finished_at", r.finished_at ? nlohmann::json(iso_utc(*r.finished_at)) : nlohmann::json()},
          {"duration_ms", r.finished_at ? nlohmann::json(*r.finished_at - r.created_at) : nlohmann::json()},
          {"error", r.error}};
}

nlohmann::json run_detail_json(const RunRecord& r, const std::vector<StepRecord>& steps) {
  nlohmann::json j = run_summary_json(r);
  j["payload"] = r.payload;
  j["steps"] = nlohmann::json::array();
  for (auto& s : steps) {
    nlohmann::json js = {{"id", s.id},
                         {"status", to_string(s.status)},
                         {"attempts", s.attempts},
                         {"exit_code", opt(s.exit_code)},
                         {"started_at", opt(s.started_at)},
                         {"finished_at", opt(s.finished_at)},
                         {"duration_ms", s.started_at && s.finished_at ? nlohmann::json(*s.finished_at - *s.started_at)
                                                                        : nlohmann::json()},
                         {"outputs", s.outputs}, {"result", s.result},
                         {"reason", s.reason},
                         {"output_tail", s.attempt_list.empty() ? std::string() : s.attempt_list.back().output_tail}};
    js["attempt_list"] = nlohmann::json::array();
    for (auto& a : s.attempt_list) {
      js["attempt_list"].push_back({{"number", a.number},
                                    {"started_at", a.started_at},
                                    {"finished_at", opt(a.finished_at)},
                                    {"exit_code", opt(a.exit_code)},
                                    {"signal", a.signal},
                                    {"reason", a.reason},
                                    {"output_bytes", a.output_bytes},
                                    {"output_tail", a.output_tail}});
    }
    j["steps"].push_back(std::move(js));
  }
  return j;
}

}  // namespace hearth::engine
