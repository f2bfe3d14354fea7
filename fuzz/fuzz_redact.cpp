// A secret (the first bytes) and a text: redacting the text at once and as
// a stream cut into arbitrary chunks give the same result, and the secret
// never survives either.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "commands/redact.h"

using namespace hearth::commands;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t secret_len = 4 + data[0] % 20;
  size_t chunk = 1 + data[1] % 13;
  if (size < 2 + secret_len) return 0;
  std::string secret(reinterpret_cast<const char*>(data) + 2, secret_len);
  std::string text(reinterpret_cast<const char*>(data) + 2 + secret_len, size - 2 - secret_len);
  text = text + secret + text;  // at least one occurrence
  auto set = std::make_shared<SecretSet>();
  if (!set->add("S", secret).ok()) std::abort();
  std::string whole = set->redact(text);
  StreamRedactor s(set);
  std::string streamed;
  for (size_t i = 0; i < text.size(); i += chunk) streamed += s.push(std::string_view(text).substr(i, chunk));
  streamed += s.flush();
  if (whole != streamed) std::abort();
  if (whole.find(secret) != std::string::npos) {
    // Only possible when the masks themselves (or leftovers around them) form it.
    if (secret.find('*') == std::string::npos) std::abort();
  }
  return 0;
}
