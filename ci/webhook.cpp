#include "ci/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstring>
#include <optional>

// RapidJSON copies a string's unescaped run 16 bytes at a time with SSE2
// (part of every x86-64 CPU), from a NUL-terminated StringStream only.
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stream.h>

#include "http/url.h"
#include "util/json_limits.h"

namespace hearth::ci {

namespace {

std::string to_hex(const unsigned char* bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

const std::string* header(const std::map<std::string, std::string>& headers, const char* name) {
  auto it = headers.find(name);
  return it == headers.end() ? nullptr : &it->second;
}

// Delivery ids and event names end up in run ids, logs and JSON: keep them
// to printable ASCII without spaces, and short.
bool sane_token(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

// The `payload` field of a form-encoded body (GitHub's
// application/x-www-form-urlencoded content type), percent-decoded;
// nullopt when there is none or its encoding is broken.
std::optional<std::string> form_payload(std::string_view body) {
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t end = body.find('&', pos);
    if (end == std::string_view::npos) end = body.size();
    std::string_view part = body.substr(pos, end - pos);
    if (part.substr(0, 8) == "payload=") return http::form_decode(part.substr(8));
    pos = end + 1;
  }
  return std::nullopt;
}

// Validates a JSON document without building it and keeps what the queue
// needs: whether the top level is an object, and its "action" string. The
// payload is stored as received, so a DOM would be thrown away; RapidJSON's
// SAX reader does this several times faster than nlohmann's lexer, which
// was a third of the cost of accepting a delivery (docs/performance.md);
// nlohmann's own SAX interface cost more than twice this check
// (docs/architecture.md, Decisions).
// RapidJSON's reader recurses once per level, and so does everything that
// later dumps or validates the payload: a level beyond kMaxJsonDepth stops
// the scan (at no extra pass over the body).
struct TopLevel : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TopLevel> {
  size_t depth = 0;
  bool object = false, action_next = false, too_deep = false;
  std::string action;
  bool Default() {
    action_next = false;
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (action_next) action.assign(s, n);
    return Default();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    action_next = depth == 1 && std::string_view(s, n) == "action";
    return true;
  }
  bool deeper() {
    too_deep = ++depth > hearth::kMaxJsonDepth;
    return !too_deep && Default();
  }
  bool StartObject() {
    if (depth == 0) object = true;
    return deeper();
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() { return deeper(); }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

// What the scan needs to know of the bytes before it starts, eight at a time:
// whether any is 0x80 or above (an encoding to check), and whether any is a
// control character (below 0x20: whitespace between tokens if \t, \n or
// \r, an error anywhere else).
struct Bytes {
  bool ascii = true;
  bool controls = false;
};
Bytes survey(std::string_view text) {
  constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t high = 0, low = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    high |= word;
    low |= (word - ones * 0x20) & ~word;  // a byte's top bit set here: that byte is below 0x20 (exact for "any")
  }
  Bytes b{(high & highs) == 0, (low & highs) != 0};
  for (; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    b.ascii = b.ascii && c < 0x80;
    b.controls = b.controls || c < 0x20;
  }
  return b;
}

// Bytes past a string's NUL that RapidJSON's 16-byte copy may read.
constexpr size_t kScanSlack = 15;

// Checks that `text` is one well-formed JSON document whose strings are
// valid UTF-8 (outside strings, any byte beyond ASCII is a syntax error);
// fills `top`. Returns the reason it is not, or nothing. Validating the
// encoding here, at the door, costs a fraction of the scan
// (docs/performance.md) and spares the sender a run that fails later.
//
// `terminated`: text.data()[text.size()] is a NUL the scan may read, and
// kScanSlack bytes after it are the same allocation's (the text is a
// std::string's, reserved so), which lets RapidJSON copy strings 16 bytes at a time
// (its StringStream); otherwise the scan stays within the bytes given. That
// copy misses the control characters 0x1A-0x1F inside a string (RapidJSON
// 1.1 compares with 0x19), so a body holding any control character is
// scanned a byte at a time, as are bodies beyond ASCII (the encoding check
// reads every byte anyway).
std::optional<std::string> scan_json(std::string_view text, TopLevel& top, bool terminated) {
  if (auto nul = text.find('\0'); nul != std::string_view::npos)  // the stream would read it as the end
    return "the body is not valid JSON (a NUL byte at byte " + std::to_string(nul) + ")";
  rapidjson::Reader reader;
  // RapidJSON checks the encoding a byte at a time, most of the scan's cost;
  // a body of ASCII alone (most deliveries) has nothing to check.
  Bytes bytes = survey(text);
  auto parse = [&](auto& in) {
    return bytes.ascii ? reader.Parse<rapidjson::kParseNoFlags>(in, top)
                       : reader.Parse<rapidjson::kParseValidateEncodingFlag>(in, top);
  };
  rapidjson::ParseResult result;
  if (terminated && bytes.ascii && !bytes.controls) {
    rapidjson::StringStream in(text.data());
    result = parse(in);
  } else {
    rapidjson::MemoryStream in(text.data(), text.size());
    result = parse(in);
  }
  if (!result.IsError()) return std::nullopt;
  std::string at = " (at byte " + std::to_string(result.Offset()) + ")";
  if (top.too_deep)
    return "the body is not accepted: JSON nests more than " + std::to_string(hearth::kMaxJsonDepth) + " levels deep" + at;
  if (result.Code() == rapidjson::kParseErrorStringInvalidEncoding) return "the body is not valid UTF-8" + at;
  return "the body is not valid JSON" + at;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return to_hex(mac, len);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// Whether `header` ("sha256=<hex>") names `mac_hex`.
bool signature_names(std::string_view header, const std::string& mac_hex) {
  constexpr std::string_view prefix = "sha256=";
  if (header.substr(0, prefix.size()) != prefix) return false;
  std::string given(header.substr(prefix.size()));
  for (char& c : given) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  return constant_time_equal(given, mac_hex);
}

}  // namespace

bool signature_valid(std::string_view secret, std::string_view body, std::string_view header) {
  return signature_names(header, hmac_sha256_hex(secret, body));
}

struct HmacTap::State {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  ~State() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

HmacTap::HmacTap(std::string_view key) : state_(std::make_unique<State>()) {
  state_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  state_->ctx = state_->mac ? EVP_MAC_CTX_new(state_->mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (state_->ctx &&
      EVP_MAC_init(state_->ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1) {
    EVP_MAC_CTX_free(state_->ctx);
    state_->ctx = nullptr;
  }
}

HmacTap::~HmacTap() = default;

void HmacTap::update(std::string_view chunk) {
  if (state_->ctx) EVP_MAC_update(state_->ctx, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
}

std::string HmacTap::final_hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  // A context that failed to set up yields "", which no signature names.
  if (!state_->ctx || EVP_MAC_final(state_->ctx, out, &len, sizeof out) != 1) return "";
  return to_hex(out, len);
}

namespace {

// check_delivery's checks; `owned`, when given, is `body` and may be taken.
std::optional<Delivery> check(std::string_view secret, const std::map<std::string, std::string>& headers,
                              std::string_view body, std::string* owned, Rejection& rejection,
                              const std::string* body_mac_hex, bool digest) {
  auto reject = [&](int status, std::string message) {
    rejection = Rejection{status, std::move(message)};
    return std::nullopt;
  };
  const std::string* sig = header(headers, "x-hub-signature-256");
  if (!sig) return reject(401, "missing X-Hub-Signature-256 header (configure a secret on the webhook)");
  bool signed_ok = body_mac_hex && !body_mac_hex->empty() ? signature_names(*sig, *body_mac_hex)
                                                          : signature_valid(secret, body, *sig);
  if (!signed_ok) return reject(401, "X-Hub-Signature-256 does not match the body");
  const std::string* event = header(headers, "x-github-event");
  if (!event || !sane_token(*event, 64)) return reject(400, "missing or malformed X-GitHub-Event header");
  const std::string* id = header(headers, "x-github-delivery");
  if (!id || !sane_token(*id, 128)) return reject(400, "missing or malformed X-GitHub-Delivery header");
  std::string_view json_text = body;
  std::optional<std::string> decoded;
  if (const std::string* type = header(headers, "content-type");
      type && type->rfind("application/x-www-form-urlencoded", 0) == 0) {
    decoded = form_payload(body);
    if (!decoded) return reject(400, "a form-encoded body needs a well-encoded payload= field");
    json_text = *decoded;
  }
  // The fast scan reads whole aligned 16-byte blocks, up to 15 bytes past
  // the terminating NUL: a string of ours is given that room first (rarely
  // a copy: a body grown by appends mostly has it), so every read stays in
  // its allocation.
  std::string* scanned = decoded ? &*decoded : owned;
  if (scanned && scanned->capacity() < scanned->size() + kScanSlack) {
    scanned->reserve(scanned->size() + kScanSlack);
    if (!decoded) body = *owned;  // moved with the reserve
    json_text = *scanned;
  }
  TopLevel top;
  if (auto bad = scan_json(json_text, top, scanned != nullptr)) return reject(400, std::move(*bad));
  if (!top.object) return reject(400, "the body is JSON but not an object");
  Delivery d;
  d.id = *id;
  d.event = *event;
  d.action = std::move(top.action);
  if (digest || decoded) d.digest = sha256_hex(body);
  d.json = decoded ? std::move(*decoded) : owned ? std::move(*owned) : std::string(body);
  return d;
}

}  // namespace

std::optional<Delivery> check_delivery(std::string_view secret, const std::map<std::string, std::string>& headers,
                                       std::string_view body, Rejection& rejection,
                                       const std::string* body_mac_hex) {
  return check(secret, headers, body, nullptr, rejection, body_mac_hex, true);
}

std::optional<Delivery> check_delivery(std::string_view secret, const std::map<std::string, std::string>& headers,
                                       std::string&& body, Rejection& rejection, const std::string* body_mac_hex,
                                       bool digest) {
  return check(secret, headers, body, &body, rejection, body_mac_hex, digest);
}

}  // namespace hearth::ci
