// `hearth serve`: the read endpoints (bearer token checked by the caller).
#include "ci/serve.h"
#include "ci/serve_responses.h"
#include "ci/serve_streams.h"
#include "engine/run_view.h"
#include "engine/show_view.h"

namespace hearth::ci {

namespace {

// The value of `key` in a query string ("a=1&b=2"), undecoded; "" if absent.
std::string query_value(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    std::string part = query.substr(pos, end - pos);
    if (part.rfind(key + "=", 0) == 0) return part.substr(key.size() + 1);
    pos = end + 1;
  }
  return "";
}

std::optional<int64_t> whole_number(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

void Server::list_runs(const http::HttpRequest& req, http::Responder r) {
  int64_t limit = 50;
  if (auto given = query_value(req.query, "limit"); !given.empty()) {
    auto n = whole_number(given);
    if (!n || *n < 1 || *n > 1000) return r.send(error_response(400, "limit must be a whole number from 1 to 1000"));
    limit = *n;
  }
  auto runs = store_.list_runs(static_cast<int>(limit), query_value(req.query, "workflow"));
  if (!runs) return r.send(error_response(500, runs.message()));
  auto arr = nlohmann::json::array();
  for (auto& run : *runs) arr.push_back(engine::run_summary_json(run));
  r.send(json_response(200, arr));
}

void Server::show_run(const std::string& id, http::Responder r) {
  auto run = store_.load_run(id);
  if (!run) return r.send(error_response(404, "no run with id '" + id + "'"));
  auto steps = store_.load_steps(id);
  if (!steps) return r.send(error_response(500, steps.message()));
  r.send(json_response(200, engine::run_show_json(*run, *steps)));
}

void Server::stream_events(const std::string& id, const http::HttpRequest& req, http::Responder r) {
  auto run = store_.load_run(id);
  if (!run) return r.send(error_response(404, "no run with id '" + id + "'"));
  int64_t after = 0;
  std::string last = req.header("last-event-id");
  if (last.empty()) last = query_value(req.query, "last_event_id");
  if (!last.empty()) {
    auto n = whole_number(last);
    if (!n) return r.send(error_response(400, "Last-Event-ID must be an event sequence number, not '" + last + "'"));
    after = *n;
  }
  // Live while this server runs it or has it queued; otherwise the stored
  // events are all there is.
  bool live = active_.count(id) > 0;
  for (auto it = queue_.begin(); !live && it != queue_.end(); ++it) live = it->run_id == id;
  streams_->open(id, after, live, std::move(r));
}

}  // namespace hearth::ci
