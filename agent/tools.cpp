// Tool definitions (name, description, input schema), dispatch, and the
// argument reader shared by the tools.
#include "agent/tools.h"

#include <exception>

#include "agent/tool_support.h"

namespace hearth::agent {
namespace detail {

Args::Args(std::string_view tool, const nlohmann::json& args, std::initializer_list<const char*> allowed)
    : tool_(tool), args_(args) {
  if (!args_.is_object()) {
    fail("arguments must be a JSON object");
    return;
  }
  for (auto it = args_.begin(); it != args_.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      fail("unknown field '" + it.key() + "'");
      return;
    }
  }
}

void Args::fail(std::string message) {
  if (error_.empty()) error_ = tool_ + ": " + message;
}

std::optional<std::string> Args::string(const char* field, bool required) {
  if (!ok()) return std::nullopt;
  auto it = args_.find(field);
  if (it == args_.end() || it->is_null()) {
    if (required) fail("field '" + std::string(field) + "' is required");
    return std::nullopt;
  }
  if (!it->is_string()) {
    fail("field '" + std::string(field) + "' must be a string, not " + it->type_name());
    return std::nullopt;
  }
  return it->get<std::string>();
}

std::optional<std::int64_t> Args::integer(const char* field, std::int64_t min, std::int64_t max) {
  if (!ok()) return std::nullopt;
  auto it = args_.find(field);
  if (it == args_.end() || it->is_null()) return std::nullopt;
  bool whole_float = it->is_number_float() && it->get<double>() == static_cast<double>(static_cast<std::int64_t>(it->get<double>()));
  if (!it->is_number_integer() && !whole_float) {
    fail("field '" + std::string(field) + "' must be an integer");
    return std::nullopt;
  }
  std::int64_t v = it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)
                       ? INT64_MAX
                       : (whole_float ? static_cast<std::int64_t>(it->get<double>()) : it->get<std::int64_t>());
  if (v < min || v > max) {
    fail("field '" + std::string(field) + "' must be between " + std::to_string(min) + " and " + std::to_string(max) +
         " (got " + std::to_string(v) + ")");
    return std::nullopt;
  }
  return v;
}

bool Args::boolean(const char* field, bool fallback) {
  if (!ok()) return fallback;
  auto it = args_.find(field);
  if (it == args_.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    fail("field '" + std::string(field) + "' must be true or false");
    return fallback;
  }
  return it->get<bool>();
}

std::string valid_utf8(std::string_view s, bool* changed) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool good = len > 0 && i + len <= n;
    for (std::size_t k = 1; good && k < len; ++k) good = (p[i + k] & 0xC0) == 0x80;
    if (good && len > 1) {
      std::uint32_t cp = c & (0x7F >> len);
      for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
      static const std::uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
      good = cp >= min_of[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);  // no overlongs, no surrogates
    }
    if (good) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      if (changed) *changed = true;
      ++i;
    }
  }
  return out;
}

bool looks_binary(std::string_view head) {
  return head.substr(0, 8192).find('\0') != std::string_view::npos;
}

}  // namespace detail

namespace {

nlohmann::json object_schema(nlohmann::json properties, std::vector<std::string> required) {
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)},
          {"additionalProperties", false}};
}

std::vector<ToolDefinition> make_definitions() {
  using nlohmann::json;
  const json path = {{"type", "string"},
                     {"description", "Path relative to the workspace root (or absolute under /workspace)."}};
  return {
      {"read",
       "Read a text file of the workspace. Lines come numbered (number, tab, text). Long files are cut at 2000 "
       "lines or 256 KiB with a marker saying how to read on; use offset and limit for a range.",
       object_schema({{"path", path},
                      {"offset", {{"type", "integer"}, {"minimum", 1}, {"description", "First line to read (1-based)."}}},
                      {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 2000},
                                 {"description", "How many lines to read (default and maximum 2000)."}}}},
                     {"path"})},
      {"write",
       "Write a file of the workspace, replacing its contents; missing parent directories are created.",
       object_schema({{"path", path}, {"content", {{"type", "string"}, {"description", "The whole new contents."}}}},
                     {"path", "content"})},
      {"edit",
       "Replace an exact string in a file. old_string must match exactly once (whitespace included) unless "
       "replace_all is true; read the file first and include enough context to make it unique.",
       object_schema({{"path", path},
                      {"old_string", {{"type", "string"}, {"description", "The exact text to replace."}}},
                      {"new_string", {{"type", "string"}, {"description", "The text to put in its place."}}},
                      {"replace_all", {{"type", "boolean"}, {"description", "Replace every match (default false)."}}}},
                     {"path", "old_string", "new_string"})},
      {"glob",
       "List workspace files whose paths match a pattern: * and ? within one path segment, [abc] classes, ** for "
       "any number of directories (e.g. src/**/*.cpp). Sorted by path; .git is not searched; symlinks are not "
       "followed.",
       object_schema({{"pattern", {{"type", "string"}, {"description", "Glob relative to path."}}},
                      {"path", {{"type", "string"}, {"description", "Directory to search from (default: the root)."}}}},
                     {"pattern"})},
      {"grep",
       "Search file contents with a regular expression (Perl syntax). Prints path:line: text for each matching "
       "line, sorted by path; binary files, .git and symlinks are skipped.",
       object_schema({{"pattern", {{"type", "string"}, {"description", "Regular expression."}}},
                      {"path", {{"type", "string"}, {"description", "File or directory to search (default: the root)."}}},
                      {"glob", {{"type", "string"}, {"description", "Only files whose path matches this glob, e.g. **/*.h"}}},
                      {"case_insensitive", {{"type", "boolean"}}},
                      {"max_results", {{"type", "integer"}, {"minimum", 1}, {"maximum", 2000},
                                       {"description", "Most matching lines to return (default 200)."}}}},
                     {"pattern"})},
  };
}

}  // namespace

Result<FileTools> FileTools::open(const std::string& root, ToolLimits limits, WorkspaceOptions options) {
  auto ws = Workspace::open(root, std::move(options));
  if (!ws) return ws.error();
  return FileTools(std::move(*ws), limits);
}

const std::vector<ToolDefinition>& FileTools::definitions() {
  static const std::vector<ToolDefinition> defs = make_definitions();
  return defs;
}

bool FileTools::has(std::string_view name) {
  for (const auto& d : definitions())
    if (d.name == name) return true;
  return false;
}

Status FileTools::add_read_only(const std::string& host_dir, const std::string& mount) {
  WorkspaceOptions options;
  options.mount = mount;
  auto ws = Workspace::open(host_dir, std::move(options));
  if (!ws) return ws.error();
  read_only_.push_back(std::move(*ws));
  return {};
}

ToolResult FileTools::call(std::string_view name, const nlohmann::json& args) const {
  try {
    // An absolute path under a read-only folder's mount goes to that folder.
    const Workspace* ws = &ws_;
    if (args.is_object() && args.contains("path") && args["path"].is_string()) {
      std::string_view path = args["path"].get_ref<const std::string&>();
      for (const auto& ro : read_only_) {
        const std::string& m = ro.mount();
        if (path.compare(0, m.size(), m) == 0 && (path.size() == m.size() || path[m.size()] == '/')) ws = &ro;
      }
    }
    if (ws != &ws_ && (name == "write" || name == "edit"))
      return {std::string(name) + ": " + ws->mount() + " is read-only (the skill's own folder)", true};
    if (name == "read") return detail::read_tool(*ws, limits_, args);
    if (name == "write") return detail::write_tool(*ws, limits_, args);
    if (name == "edit") return detail::edit_tool(*ws, limits_, args);
    if (name == "glob") return detail::glob_tool(*ws, limits_, args);
    if (name == "grep") return detail::grep_tool(*ws, limits_, args);
    return {"unknown tool '" + detail::valid_utf8(name) + "'", true};
  } catch (const std::exception& e) {
    // A bug, not a user error: say so rather than take the engine down.
    return {"internal error in tool '" + detail::valid_utf8(name) + "': " + detail::valid_utf8(e.what()), true};
  }
}

}  // namespace hearth::agent
