#include "workflows/loader_run.h"

#include <cctype>
#include <optional>
#include <string>

namespace hearth::workflows {

// The two patterns below are matched by hand, not with std::regex: compiling
// them was half a millisecond of every cold `hearth run`.
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The input an expression names when it is nothing but `inputs.NAME` or
// `inputs['NAME']` (spaces around allowed), else nullopt. NAME after the dot
// is [A-Za-z_][A-Za-z0-9_-]*; between the quotes, anything but a quote.
std::optional<std::string> input_reference(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.substr(0, 6) != "inputs") return std::nullopt;
  text.remove_prefix(6);
  if (text.substr(0, 1) == ".") {
    std::string_view name = text.substr(1);
    if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return std::nullopt;
    for (char c : name)
      if (!is_word(c) && c != '-') return std::nullopt;
    return std::string(name);
  }
  if (text.size() >= 4 && text.substr(0, 2) == "['" && text.substr(text.size() - 2) == "']") {
    std::string_view name = text.substr(2, text.size() - 4);
    if (name.find('\'') != std::string_view::npos) return std::nullopt;
    return std::string(name);
  }
  return std::nullopt;
}

// Whether `line` appends to $HEARTH_OUTPUT: `>>`, spaces, an optional double
// quote, `$` or `${`, then HEARTH_OUTPUT as a whole word.
bool appends_to_output(std::string_view line) {
  static constexpr std::string_view kName = "HEARTH_OUTPUT";
  for (size_t at = line.find(">>"); at != std::string_view::npos; at = line.find(">>", at + 1)) {
    size_t i = at + 2;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i < line.size() && line[i] == '"') ++i;
    if (i >= line.size() || line[i] != '$') continue;
    ++i;
    if (i < line.size() && line[i] == '{') ++i;
    if (line.substr(i, kName.size()) != kName) continue;
    i += kName.size();
    if (i == line.size() || !is_word(line[i])) return true;
  }
  return false;
}

}  // namespace

const char* const kUnsafeOutputWarning =
    "writes a ${{ }} value to $HEARTH_OUTPUT as key=value: a newline in the value adds output lines of the "
    "value's choosing; use the delimiter form with a random delimiter: "
    "d=\"EOF_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\"; "
    "{ echo \"key<<$d\"; echo \"${{ ... }}\"; echo \"$d\"; } >> \"$HEARTH_OUTPUT\"";

std::vector<bool> integer_interpolations(const expr::Template& run, const nlohmann::json& inputs_schema) {
  const nlohmann::json* props = nullptr;
  if (auto p = inputs_schema.find("properties"); p != inputs_schema.end() && p->is_object()) props = &*p;
  std::vector<bool> out;
  for (const auto& part : run.parts) {
    if (!part.expr) continue;
    bool integer = false;
    if (auto name = props ? input_reference(part.expr->text()) : std::nullopt) {
      auto it = props->find(*name);
      integer = it != props->end() && it->is_object() && it->value("type", nlohmann::json()) == "integer";
    }
    out.push_back(integer);
  }
  return out;
}

size_t script_offset(std::string_view script, size_t line, size_t column) {
  size_t pos = 0;
  for (size_t l = 1; l < line && pos < script.size(); ++l) {
    size_t nl = script.find('\n', pos);
    if (nl == std::string_view::npos) return script.size();
    pos = nl + 1;
  }
  return std::min(pos + (column > 0 ? column - 1 : 0), script.size());
}

namespace {

// Byte index in `text` of 1-based (line, column), or npos.
size_t index_of(std::string_view text, Location at) {
  if (at.line < 1 || at.column < 1) return std::string_view::npos;
  size_t pos = 0;
  for (int l = 1; l < at.line; ++l) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return pos;
    ++pos;
  }
  pos += static_cast<size_t>(at.column) - 1;
  return pos < text.size() ? pos : std::string_view::npos;
}

}  // namespace

std::optional<Location> value_location(std::string_view file, Location value_start, std::string_view value,
                                       size_t offset) {
  size_t quote = index_of(file, value_start);
  if (quote == std::string_view::npos || offset > value.size()) return std::nullopt;
  size_t body = quote;
  if (file.substr(quote, 3) == "\"\"\"" || file.substr(quote, 3) == "'''") {
    body += 3;
    if (file.substr(body, 1) == "\n") body += 1;
    else if (file.substr(body, 2) == "\r\n") body += 2;
  } else if (file.substr(quote, 1) == "\"" || file.substr(quote, 1) == "'") {
    body += 1;
  } else {
    return std::nullopt;
  }
  // The value's line holding `offset`, and the same line in the file.
  size_t line_start = offset == 0 ? 0 : value.rfind('\n', offset - 1);
  line_start = line_start == std::string_view::npos || offset == 0 ? 0 : line_start + 1;
  size_t newlines = 0;
  for (size_t i = 0; i < line_start; ++i) newlines += value[i] == '\n';
  size_t file_line = body;
  for (size_t k = 0; k < newlines; ++k) {
    file_line = file.find('\n', file_line);
    if (file_line == std::string_view::npos) return std::nullopt;
    ++file_line;
  }
  size_t line_end = value.find('\n', offset);
  std::string_view line = value.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                                                      : line_end - line_start);
  if (file.substr(file_line, line.size()) != line) return std::nullopt;  // an escape changed the line
  size_t pos = file_line + (offset - line_start);
  Location loc{1, 1};
  for (size_t i = 0; i < pos; ++i) {
    if (file[i] == '\n') {
      ++loc.line;
      loc.column = 1;
    } else {
      ++loc.column;
    }
  }
  return loc;
}

std::vector<size_t> unsafe_output_lines(std::string_view run) {
  std::vector<size_t> out;
  for (size_t start = 0; start <= run.size();) {
    size_t end = run.find('\n', start);
    if (end == std::string_view::npos) end = run.size();
    std::string_view line = run.substr(start, end - start);
    bool delimiter_form = line.find("<<") != std::string_view::npos;
    if (line.find("${{") != std::string_view::npos && !delimiter_form && appends_to_output(line)) out.push_back(start);
    start = end + 1;
  }
  return out;
}

}  // namespace hearth::workflows
