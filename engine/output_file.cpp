// Reads a step's $HEARTH_OUTPUT file. The format and its edge cases follow the
// GitHub runner's reader (FileCommandManager.cs, EnumerateEnvironmentFileKeyValuePairs):
//   - whichever of '=' and '<<' comes first on a line decides its form;
//   - a heredoc ends at a line exactly equal to its delimiter; the lines in
//     between are kept as written, empty ones included;
//   - empty lines between entries are skipped.
// Where Hearth differs from the runner, on purpose:
//   - "\r\n" ends a line like "\n" (the runner on Linux keeps the "\r" in values);
//   - keys are restricted to [A-Za-z0-9_-], since they are read back as
//     `steps.<id>.outputs.<key>` (the runner accepts any non-empty name);
//   - a leading UTF-8 byte order mark is skipped (the runner's File.ReadAllText
//     does the same; its own tests write one).
#include "engine/output_file.h"

#include <algorithm>
#include <optional>

namespace hearth::engine {
namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

struct Line {
  std::string_view text;  // without its line ending
  size_t number;          // 1-based
  bool ended;             // false for a last line with no "\n"
};

// Hands out the lines of a text one by one.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  /// The next line, or nullopt at the end of the text.
  std::optional<Line> next() {
    if (pos_ >= text_.size()) return std::nullopt;
    size_t nl = text_.find('\n', pos_);
    bool ended = nl != std::string_view::npos;
    size_t stop = ended ? nl : text_.size();
    std::string_view line = text_.substr(pos_, stop - pos_);
    if (ended && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = ended ? nl + 1 : text_.size();
    return Line{line, ++number_, ended};
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Quotes a piece of user text for a message, cut short if long.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, kMax)) + "...'";
}

Error error_at(size_t line, const std::string& what) {
  return Error{"line " + std::to_string(line) + ": " + what};
}

Status check_key(std::string_view key, size_t line) {
  if (key.empty()) return error_at(line, "empty key");
  if (!std::all_of(key.begin(), key.end(), is_key_char))
    return error_at(line, "key " + quoted(key) + " may only hold letters, digits, '_' and '-'");
  return {};
}

// Reads the lines after `key<<delimiter` up to the delimiter line.
Result<std::string> read_heredoc(LineReader& lines, std::string_view key, std::string_view delimiter,
                                 size_t start_line) {
  std::string value;
  bool first = true;
  while (auto line = lines.next()) {
    if (line->text == delimiter) return value;
    if (!first) value += '\n';
    value += line->text;
    first = false;
  }
  return error_at(start_line, "the value of " + quoted(key) + " never ends: no line equal to its delimiter " +
                                  quoted(delimiter) + " follows");
}

}  // namespace

Result<std::map<std::string, std::string>> parse_output_file(std::string_view text) {
  if (text.size() > kMaxOutputFileBytes)
    return Error{"output file is " + std::to_string(text.size()) + " bytes; the limit is " +
                 std::to_string(kMaxOutputFileBytes)};
  if (text.starts_with(kByteOrderMark)) text.remove_prefix(kByteOrderMark.size());

  std::map<std::string, std::string> outputs;
  LineReader lines(text);
  while (auto line = lines.next()) {
    if (line->text.empty()) continue;
    size_t eq = line->text.find('=');
    size_t heredoc = line->text.find("<<");
    if (eq == std::string_view::npos && heredoc == std::string_view::npos)
      return error_at(line->number, "expected key=value or key<<DELIMITER, found " + quoted(line->text));

    if (eq < heredoc) {  // npos compares greater than any position
      std::string_view key = line->text.substr(0, eq);
      if (auto s = check_key(key, line->number); !s) return Error{s.message()};
      outputs[std::string(key)] = std::string(line->text.substr(eq + 1));
      continue;
    }
    std::string_view key = line->text.substr(0, heredoc);
    std::string_view delimiter = line->text.substr(heredoc + 2);
    if (auto s = check_key(key, line->number); !s) return Error{s.message()};
    if (delimiter.empty()) return error_at(line->number, "empty delimiter after " + quoted(std::string(key) + "<<"));
    auto value = read_heredoc(lines, key, delimiter, line->number);
    if (!value) return value.error();
    outputs[std::string(key)] = std::move(*value);
  }
  return outputs;
}

}  // namespace hearth::engine
