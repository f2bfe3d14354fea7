#include "ci/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <optional>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

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

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
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
    if (part.substr(0, 8) == "payload=") {
      std::string out;
      for (size_t i = 8; i < part.size(); ++i) {
        if (part[i] == '+') {
          out += ' ';
        } else if (part[i] == '%') {
          if (i + 2 >= part.size()) return std::nullopt;
          int hi = hex_value(part[i + 1]), lo = hex_value(part[i + 2]);
          if (hi < 0 || lo < 0) return std::nullopt;
          out += static_cast<char>(hi * 16 + lo);
          i += 2;
        } else {
          out += part[i];
        }
      }
      return out;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// Validates a JSON document without building it and keeps what the queue
// needs: whether the top level is an object, and its "action" string. The
// payload is stored as received, so a DOM would be thrown away; RapidJSON's
// SAX reader does this several times faster than nlohmann's lexer, which
// was a third of the cost of accepting a delivery (docs/performance.md).
struct TopLevel : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TopLevel> {
  int depth = 0;
  bool object = false, action_next = false;
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
  bool StartObject() {
    if (depth++ == 0) object = true;
    return Default();
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() {
    ++depth;
    return Default();
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

// Whether `text` is one well-formed JSON document; fills `top`. Strings are
// not checked for valid UTF-8 here (that check was half the scan); a payload
// with invalid UTF-8 is refused when its run starts, with the error recorded
// on the delivery.
bool scan_json(std::string_view text, TopLevel& top) {
  if (text.find('\0') != std::string_view::npos) return false;  // the stream would read it as the end
  rapidjson::MemoryStream in(text.data(), text.size());
  rapidjson::Reader reader;
  return !reader.Parse<rapidjson::kParseDefaultFlags>(in, top).IsError();
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

bool signature_valid(std::string_view secret, std::string_view body, std::string_view header) {
  constexpr std::string_view prefix = "sha256=";
  if (header.substr(0, prefix.size()) != prefix) return false;
  std::string given(header.substr(prefix.size()));
  for (char& c : given) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  return constant_time_equal(given, hmac_sha256_hex(secret, body));
}

std::optional<Delivery> check_delivery(std::string_view secret, const std::map<std::string, std::string>& headers,
                                       std::string_view body, Rejection& rejection) {
  auto reject = [&](int status, std::string message) {
    rejection = Rejection{status, std::move(message)};
    return std::nullopt;
  };
  const std::string* sig = header(headers, "x-hub-signature-256");
  if (!sig) return reject(401, "missing X-Hub-Signature-256 header (configure a secret on the webhook)");
  if (!signature_valid(secret, body, *sig)) return reject(401, "X-Hub-Signature-256 does not match the body");
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
  TopLevel top;
  if (!scan_json(json_text, top)) return reject(400, "the body is not valid JSON");
  if (!top.object) return reject(400, "the body is JSON but not an object");
  Delivery d;
  d.id = *id;
  d.event = *event;
  d.action = std::move(top.action);
  d.digest = sha256_hex(body);
  d.json = decoded ? std::move(*decoded) : std::string(body);
  return d;
}

}  // namespace hearth::ci
