// GitHub webhook deliveries: signature verification and the parts of a
// delivery the queue needs. No I/O; the server (serve.cpp) feeds it the raw
// body and headers of one request.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/server.h"

namespace hearth::ci {

/// Lower-case hex HMAC-SHA256 of `data` keyed with `key` (OpenSSL).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Compares in time that depends only on the lengths (which are public),
/// never on where the contents differ.
bool constant_time_equal(std::string_view a, std::string_view b);

/// Whether `header` (the X-Hub-Signature-256 value, "sha256=<64 hex>") is
/// the signature of `body` under `secret`. Hex is compared case-insensitively
/// by normalising it first; the comparison itself is constant-time.
bool signature_valid(std::string_view secret, std::string_view body, std::string_view header);

/// HMAC-SHA256 of a body computed as it streams in (an http::BodyTap),
/// so the body is not read a second time to check its signature.
class HmacTap final : public http::BodyTap {
 public:
  explicit HmacTap(std::string_view key);
  ~HmacTap() override;
  HmacTap(const HmacTap&) = delete;
  HmacTap& operator=(const HmacTap&) = delete;
  void update(std::string_view chunk) override;
  /// The lower-case hex MAC of everything given to update(). Call once.
  std::string final_hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A delivery that passed every check.
struct Delivery {
  std::string id;      // X-GitHub-Delivery
  std::string event;   // X-GitHub-Event
  std::string action;  // payload "action", empty when absent
  std::string digest;  // sha256_hex(body)
  std::string json;    // the payload, valid JSON text of an object (the body, or its payload= field)
};

/// Why a delivery was refused: the HTTP status to answer and a message for
/// the sender (it names the header or the problem, never the secret).
struct Rejection {
  int status = 400;
  std::string message;
};

/// Checks one POST /hooks/github in the order that keeps unauthenticated
/// input cheap: the signature first (401: missing or wrong), then the
/// headers (400: no X-GitHub-Event or X-GitHub-Delivery, or ones that are
/// not printable ASCII of sane length), then the JSON (400: nested deeper
/// than kMaxJsonDepth, not valid UTF-8, malformed, or not an object) — the body itself, or its `payload=` field when the
/// content type is application/x-www-form-urlencoded.
/// `headers` has lower-case names. `body_mac_hex`, when given, is the body's
/// HMAC already computed under `secret` (an HmacTap's). Returns the
/// delivery, or fills `rejection`.
std::optional<Delivery> check_delivery(std::string_view secret, const std::map<std::string, std::string>& headers,
                                       std::string_view body, Rejection& rejection,
                                       const std::string* body_mac_hex = nullptr);
/// The same, taking the body, which becomes the delivery's `json` without a
/// copy when it is the JSON itself. With `digest` false, `digest` is left
/// empty in that case, for the caller to compute as sha256_hex(json) where
/// it costs less (a form-encoded body's digest is computed here: its `json`
/// is not the body).
std::optional<Delivery> check_delivery(std::string_view secret, const std::map<std::string, std::string>& headers,
                                       std::string&& body, Rejection& rejection, const std::string* body_mac_hex,
                                       bool digest);

}  // namespace hearth::ci
