// Any body under a valid signature, JSON or form-encoded: check_delivery
// accepts it or refuses it with a 4xx and a reason, never crashes; what it
// accepts is a JSON object within the nesting limit, in valid UTF-8, whose
// "action" is the one it reports. The server's call (the body handed over,
// scanned up to its NUL with RapidJSON's SIMD string copy) gives the same
// verdict as a call with a view of the body.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ci/webhook.h"
#include "util/json_limits.h"

using namespace hearth::ci;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  bool form = data[0] & 1;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::map<std::string, std::string> headers{
      {"x-github-event", "issues"},
      {"x-github-delivery", "fuzz-1"},
      {"x-hub-signature-256", "sha256=" + hmac_sha256_hex("secret", body)},
  };
  if (form) headers["content-type"] = "application/x-www-form-urlencoded";
  Rejection why;
  auto d = check_delivery("secret", headers, body, why);
  Rejection served_why;
  std::string mac = hmac_sha256_hex("secret", body);
  auto served = check_delivery("secret", headers, std::string(body), served_why, &mac, /*digest=*/false);
  if (served.has_value() != d.has_value() || served_why.message != why.message) std::abort();
  if (served && (served->json != d->json || served->action != d->action)) std::abort();
  if (!d) {
    if (why.status < 400 || why.status >= 500 || why.message.empty()) std::abort();
    return 0;
  }
  std::string error;
  auto j = hearth::parse_untrusted_json(d->json, &error);
  if (!j || !j->is_object()) std::abort();
  auto action = j->find("action");
  std::string expected = action != j->end() && action->is_string() ? action->get<std::string>() : "";
  if (d->action != expected) std::abort();
  // Valid UTF-8 throughout: dumping without a replacement handler throws on anything else.
  try {
    (void)j->dump();
  } catch (const nlohmann::json::exception&) {
    std::abort();
  }
  return 0;
}
