// Redaction of secret values from everything that leaves the broker: the
// stream back to the sandbox, events, the store, terminal and CI output.
//
// Redaction is defence in depth, not the boundary: a program that holds a
// secret can always print it in a form no list foresees (reversed, XORed,
// one character per line). What keeps secrets from a step is that the step
// never holds them (docs/threat-model.md). This catches the cheap accidents
// and the lazy attacks:
//
// - the value as is; its base64 (standard and URL-safe alphabets, at each of
//   the three byte alignments, so a secret inside a larger encoded blob such
//   as a Basic auth header is caught too); base64 of its base64 (also of the
//   inner encoding wrapped at 64 and 76 columns, as openssl and coreutils
//   print it); hex in lower and upper case; percent-encoded (upper- and
//   lower-case hex); JSON-escaped;
// - any of those broken over lines: one line break (LF or CR LF) may stand
//   between any two characters of a form, which covers base64 wrapped at 64
//   or 76 columns and `xxd -p`;
// - a secret written partly on stdout and partly on stderr
//   (StreamPairRedactor), while the two are still forwarded separately.
//
// Each occurrence becomes "***". encoded_forms() is the one list of forms:
// the redactor and the `::add-mask::` lines of `hearth ci` both use it.
#pragma once

#include <array>
#include <cstdint>
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
  /// The most bytes of text one match can cover: longest() with a CR LF
  /// between every two characters.
  size_t reach() const { return patterns_.empty() ? 0 : 3 * longest() - 2; }
  /// `text` with every occurrence of every form replaced by "***".
  std::string redact(std::string_view text) const;

 private:
  friend class StreamRedactor;
  friend class StreamPairRedactor;
  /// How many bytes of text the longest form that starts at text[i] covers
  /// (line breaks inside it included), or 0.
  size_t match_at(std::string_view text, size_t i) const;
  void index();
  std::vector<std::string> patterns_;
  std::array<std::vector<uint32_t>, 256> by_first_{};  // pattern indexes by first byte, longest first
};

/// Redacts a byte stream that arrives in chunks: a secret split across two
/// chunks is still hidden. Holds back at most reach()-1 bytes until the
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

/// Redacts the two output streams of one program (0: stdout, 1: stderr),
/// which stay separate: each stream is redacted as by StreamRedactor, and a
/// secret whose first part is held back on one stream and the rest on the
/// other (in either order) is hidden too, each stream's part becoming "***".
/// Holds back at most reach()-1 bytes of each stream.
class StreamPairRedactor {
 public:
  explicit StreamPairRedactor(std::shared_ptr<const SecretSet> secrets) : secrets_(std::move(secrets)) {}
  /// What each stream may emit now, after `chunk` arrived on `stream`.
  std::array<std::string, 2> push(int stream, std::string_view chunk);
  /// `stream` reached its end of file. What each stream may emit now: an
  /// ended stream's last bytes stay held while the other is open (its next
  /// bytes may complete a secret with them); once both ended, everything.
  std::array<std::string, 2> end(int stream);

 private:
  struct Pending {
    std::string bytes;
    std::vector<uint64_t> seq;   // arrival order of each byte, across both streams
    std::vector<uint32_t> mark;  // 0, or the cross-stream match the byte belongs to
  };
  void mark_across();
  std::string drain(int stream, size_t keep);
  std::shared_ptr<const SecretSet> secrets_;
  Pending pending_[2];
  bool ended_[2] = {false, false};
  uint64_t next_seq_ = 0;
  uint32_t next_mark_ = 1;
};

/// The forms of one value that SecretSet hides and `hearth ci` registers
/// with `::add-mask::`: the value first, then its encodings, each once.
std::vector<std::string> encoded_forms(const std::string& value);

}  // namespace hearth::commands
