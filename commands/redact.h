// Redaction of secret values from everything that leaves the broker: the
// stream back to the sandbox, events, the store, terminal and CI output.
//
// A secret is hidden in the forms a program is likely to print it in: as is,
// base64 (standard and URL-safe alphabets, at each of the three byte
// alignments, so a secret inside a larger encoded blob such as a Basic auth
// header is caught too), percent-encoded (upper- and lower-case hex) and
// JSON-escaped. Each occurrence becomes "***".
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hearth::commands {

/// Secrets shorter than this are refused: they would redact ordinary text.
inline constexpr size_t kMinSecretLength = 4;
inline constexpr std::string_view kMask = "***";

/// The set of byte strings to hide. Cheap to share between streams.
class SecretSet {
 public:
  /// Adds `value` and its encoded forms. Refuses values shorter than
  /// kMinSecretLength (the error names `name`, never the value).
  Status add(const std::string& name, const std::string& value);
  bool empty() const { return patterns_.empty(); }
  /// Every form of every secret, longest first.
  const std::vector<std::string>& patterns() const { return patterns_; }
  size_t longest() const { return patterns_.empty() ? 0 : patterns_.front().size(); }
  /// `text` with every occurrence of every form replaced by "***".
  std::string redact(std::string_view text) const;

 private:
  friend class StreamRedactor;
  /// The longest pattern that starts at text[i], or 0.
  size_t match_at(std::string_view text, size_t i) const;
  void index();
  std::vector<std::string> patterns_;
  std::array<std::vector<uint32_t>, 256> by_first_{};  // pattern indexes by first byte, longest first
};

/// Redacts a byte stream that arrives in chunks: a secret split across two
/// chunks is still hidden. Holds back at most longest()-1 bytes until the
/// next push or flush.
class StreamRedactor {
 public:
  explicit StreamRedactor(std::shared_ptr<const SecretSet> secrets) : secrets_(std::move(secrets)) {}
  /// The redacted output that is safe to emit now.
  std::string push(std::string_view chunk);
  /// Everything held back, redacted. Call once at the end of the stream.
  std::string flush();

 private:
  std::string drain(size_t keep);
  std::shared_ptr<const SecretSet> secrets_;
  std::string pending_;
};

/// The forms of one value that SecretSet hides (exposed for tests).
std::vector<std::string> encoded_forms(const std::string& value);

}  // namespace hearth::commands
