// GitHub Actions workflow commands: the `::command k=v::message` lines a step
// prints on stdout for the runner to act on (groups, annotations, masks).
// Escaping follows the Actions toolkit byte for byte: in the message `%`,
// CR and LF become %25, %0D, %0A; in property values also `:` and `,`
// become %3A and %2C. Properties with an empty value are left out.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::ci {

/// The message part of a command, escaped.
std::string escape_data(std::string_view s);
/// A property value, escaped.
std::string escape_property(std::string_view s);

using Properties = std::vector<std::pair<std::string, std::string>>;

/// One command line, ending in "\n": "::name k1=v1,k2=v2::message".
/// Properties keep their order; those with an empty value are dropped.
std::string format_command(std::string_view name, const Properties& properties, std::string_view message);

/// Where an annotation points; zero/empty fields are left out.
struct Annotation {
  std::string title;
  std::string file;  // relative to the repository root
  int line = 0, end_line = 0, col = 0, end_column = 0;
};

/// "::error ...::message", "::warning ...::message" or "::notice ...::message"
/// with the annotation's properties in the toolkit's order
/// (title, file, line, endLine, col, endColumn).
std::string format_annotation(std::string_view level, const Annotation& where, std::string_view message);

/// The forms of a secret value that must be masked: the value itself first,
/// then the encodings the engine's redactor hides (commands/redact.h, one
/// list for both), each once. Empty for an empty value. The runner masks
/// line by line, so a form broken over lines is caught by Hearth's own
/// redaction before it prints, not by these masks.
std::vector<std::string> secret_forms(std::string_view value);

/// "::add-mask::<value>" lines for every form of every value (empty ones
/// skipped, duplicates once).
std::string mask_commands(const std::vector<std::string>& values);

/// Replaces every form of every secret in `text` with "***", longest first.
std::string redact(std::string text, const std::vector<std::string>& values);

}  // namespace hearth::ci
