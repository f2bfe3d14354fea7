#include "ci/actions_event.h"

#include <openssl/evp.h>

#include "engine/inputs.h"

namespace hearth::ci {

std::string event_action(const nlohmann::json& event) {
  if (event.is_object() && event.contains("action") && event["action"].is_string()) return event["action"];
  return "";
}

Result<nlohmann::json> run_payload(const std::string& event_name, const nlohmann::json& event,
                                   const nlohmann::json& inputs_schema) {
  nlohmann::json payload = event;
  if (event_name != "workflow_dispatch" || !event.contains("inputs") || !event["inputs"].is_object()) return payload;
  for (auto& [key, value] : event["inputs"].items()) {
    if (!value.is_string()) {
      payload[key] = value;
      continue;
    }
    auto v = engine::coerce_input(inputs_schema, key, value.get<std::string>());
    if (!v) return Error{"workflow_dispatch " + v.message()};
    payload[key] = std::move(*v);
  }
  return payload;
}

namespace {
std::string clean(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  return out;
}

std::string short_hash(const std::string& text) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), d, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}
}  // namespace

std::string derive_run_id(const ActionsEnv& env, const std::string& workflow, bool fresh) {
  if (env.run_id.empty()) return "";
  std::string attempt = fresh ? "-a" + std::to_string(env.run_attempt) : "";
  // The hash keeps ids apart that cleaning or cutting made equal.
  std::string hash = short_hash(env.repository + '\0' + env.run_id + '\0' + env.job + '\0' + workflow + attempt);
  std::string id = "gh-" + clean(env.run_id, 24) + "-" + clean(env.job, 40) + "-" + clean(workflow, 40) + attempt + "-" + hash;
  return id.substr(0, 128);
}

}  // namespace hearth::ci
