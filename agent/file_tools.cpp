// read, write and edit: one file each, opened inside the workspace.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/tool_support.h"

namespace hearth::agent::detail {
namespace {

// Closes a descriptor on scope exit.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Refuses anything but a regular file; describes what it is instead.
Status regular(int fd, const std::string& rel, struct stat& st) {
  if (::fstat(fd, &st) != 0) return Error{open_error(rel, errno)};
  if (S_ISDIR(st.st_mode)) return Error{"'" + rel + "' is a directory (use glob to list it)"};
  if (!S_ISREG(st.st_mode)) return Error{"'" + rel + "' is not a regular file (a FIFO, socket or device); refused"};
  return {};
}

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

Result<std::string> read_file(const Workspace& ws, const std::string& rel, std::size_t max, ReadFilter filter) {
  int fd = ws.open_at(rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Error{open_error(rel, -fd)};
  Fd guard(fd);
  struct stat st {};
  if (Status s = regular(fd, rel, st); !s) return s.error();
  if (filter.file_size) *filter.file_size = static_cast<std::uint64_t>(st.st_size);
  if (filter.skip_large && static_cast<std::uint64_t>(st.st_size) > max) {
    *filter.large = true;
    return std::string();
  }
  std::string out;
  // Grows by doubling: a huge file that turns out binary costs one small buffer.
  out.resize(std::min({max + 1, static_cast<std::size_t>(st.st_size) + 1, std::size_t{1} << 20}));
  std::size_t got = 0;
  bool checked = !filter.skip_binary;
  while (got < out.size()) {
    if (!checked && got >= std::min<std::size_t>(8192, static_cast<std::size_t>(st.st_size))) {
      checked = true;
      if (looks_binary(std::string_view(out.data(), got))) {
        *filter.binary = true;
        out.resize(got);
        return out;
      }
    }
    std::size_t want = out.size() - got;
    if (!checked) want = std::min(want, std::size_t{8192} - std::min<std::size_t>(got, 8191));  // check the start first
    ssize_t n = ::read(fd, out.data() + got, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot read '" + rel + "': " + std::strerror(errno)};
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == out.size() && got <= max) out.resize(std::min(max + 1, out.size() * 2));  // file grew
  }
  out.resize(got);
  return out;
}

Status write_file(const Workspace& ws, const std::string& rel, std::string_view content) {
  if (rel == ".") return Error{"the workspace root is a directory"};
  if (Status s = ws.make_parents(rel); !s) return s;
  int fd = ws.open_at(rel, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY, 0644);
  if (fd < 0) return Error{open_error(rel, -fd)};
  Fd guard(fd);
  struct stat st {};
  if (Status s = regular(fd, rel, st); !s) return s;
  if (st.st_nlink > 1) {
    return Error{"'" + rel + "' has " + std::to_string(st.st_nlink) +
                 " hard links; writing would change the other names too; refused"};
  }
  if (::ftruncate(fd, 0) != 0) return Error{"cannot truncate '" + rel + "': " + std::strerror(errno)};
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot write '" + rel + "': " + std::strerror(errno)};
    done += static_cast<std::size_t>(n);
  }
  return {};
}

ToolResult read_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& json) {
  Args a("read", json, {"path", "offset", "limit"});
  auto path = a.string("path", true);
  auto offset = a.integer("offset", 1, INT64_MAX);
  auto limit = a.integer("limit", 1, static_cast<std::int64_t>(limits.read_max_lines));
  if (!a.ok()) return a.error();
  auto rel = ws.relative(*path);
  if (!rel) return {"read: " + rel.message(), true};
  // Scan at most this much: enough for any line range a model can use.
  constexpr std::size_t kScanMax = std::size_t{64} << 20;
  bool binary = false;
  std::uint64_t size = 0;
  ReadFilter filter;
  filter.skip_binary = true;
  filter.binary = &binary;
  filter.file_size = &size;
  auto data = read_file(ws, *rel, kScanMax, filter);
  if (!data) return {"read: " + data.message(), true};
  bool scan_cut = data->size() > kScanMax;
  if (scan_cut) data->resize(data->rfind('\n') == std::string::npos ? kScanMax : data->rfind('\n') + 1);
  const std::string& text = *data;
  if (binary || looks_binary(text)) {
    return {"'" + *rel + "' is a binary file (" + std::to_string(size) + " bytes); not shown", true};
  }
  std::size_t first = static_cast<std::size_t>(offset.value_or(1));
  std::size_t want = static_cast<std::size_t>(limit.value_or(static_cast<std::int64_t>(limits.read_max_lines)));
  std::string out;
  bool bad_utf8 = false, cut_line = false;
  std::size_t line = 1, pos = 0, shown = 0, last = 0;
  bool byte_cap = false;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    if (line >= first) {
      if (shown == want) break;
      std::string_view body(text.data() + pos, end - pos);
      if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
      std::string cut;
      if (body.size() > limits.line_max_chars) {
        cut = " [... line cut: " + std::to_string(body.size() - limits.line_max_chars) + " more bytes]";
        body = body.substr(0, limits.line_max_chars);
        cut_line = true;
      }
      std::string num = std::to_string(line);
      std::string entry = std::string(num.size() < 6 ? 6 - num.size() : 0, ' ') + num + "\t" +
                          valid_utf8(body, &bad_utf8) + cut + "\n";
      if (out.size() + entry.size() > limits.read_max_bytes) {
        byte_cap = true;
        break;
      }
      out += entry;
      ++shown;
      last = line;
    }
    ++line;
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  std::size_t total = line - 1;
  if (pos < text.size()) {
    // Count the rest for the marker.
    total = line - 1;
    for (std::size_t p = pos; p < text.size();) {
      std::size_t nl = text.find('\n', p);
      ++total;
      p = nl == std::string::npos ? text.size() : nl + 1;
    }
  }
  if (text.empty()) return {"'" + *rel + "' is empty", false};
  if (scan_cut && last == total) {
    out += "[truncated: only the first 64 MiB of '" + *rel + "' can be read with this tool; use grep or bash]\n";
  }
  if (first > total) {
    return {"read: offset " + std::to_string(first) + " is past the end of '" + *rel + "' (" +
                plural(total, "line") + ")",
            true};
  }
  if (last < total) {
    out += "[truncated: showed lines " + std::to_string(first) + "-" + std::to_string(last) + " of " +
           (scan_cut ? "at least " : "") + std::to_string(total) + (byte_cap ? " (result size cap)" : "") + "; call read with offset=" +
           std::to_string(last + 1) + " to continue]\n";
  }
  if (cut_line) out += "[note: lines longer than " + std::to_string(limits.line_max_chars) + " characters were cut]\n";
  if (bad_utf8) out += "[note: the file is not valid UTF-8; invalid bytes are shown as U+FFFD]\n";
  return {out, false};
}

ToolResult write_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& json) {
  Args a("write", json, {"path", "content"});
  auto path = a.string("path", true);
  auto content = a.string("content", true);
  if (!a.ok()) return a.error();
  if (content->size() > limits.write_max_bytes) {
    return {"write: field 'content' is " + std::to_string(content->size()) + " bytes; the limit is " +
                std::to_string(limits.write_max_bytes),
            true};
  }
  auto rel = ws.relative(*path);
  if (!rel) return {"write: " + rel.message(), true};
  if (Status s = write_file(ws, *rel, *content); !s) return {"write: " + s.message(), true};
  return {"wrote " + plural(content->size(), "byte") + " to " + *rel, false};
}

ToolResult edit_tool(const Workspace& ws, const ToolLimits& limits, const nlohmann::json& json) {
  Args a("edit", json, {"path", "old_string", "new_string", "replace_all"});
  auto path = a.string("path", true);
  auto old_s = a.string("old_string", true);
  auto new_s = a.string("new_string", true);
  bool all = a.boolean("replace_all", false);
  if (!a.ok()) return a.error();
  if (old_s->empty()) return {"edit: field 'old_string' is empty; use write to create or replace a whole file", true};
  if (*old_s == *new_s) return {"edit: 'old_string' and 'new_string' are the same; nothing to do", true};
  auto rel = ws.relative(*path);
  if (!rel) return {"edit: " + rel.message(), true};
  auto data = read_file(ws, *rel, limits.edit_max_bytes);
  if (!data) return {"edit: " + data.message(), true};
  if (data->size() > limits.edit_max_bytes) {
    return {"edit: '" + *rel + "' is larger than " + std::to_string(limits.edit_max_bytes) + " bytes; not edited", true};
  }
  std::string& text = *data;
  std::size_t count = 0;
  for (std::size_t p = text.find(*old_s); p != std::string::npos; p = text.find(*old_s, p + old_s->size())) ++count;
  if (count == 0) return {"edit: 'old_string' was not found in '" + *rel + "' (0 matches); read the file and copy the text exactly", true};
  if (count > 1 && !all) {
    return {"edit: 'old_string' matches " + std::to_string(count) + " times in '" + *rel +
                "'; include more surrounding text to make it unique, or set replace_all to true",
            true};
  }
  std::string out;
  out.reserve(text.size() + count * new_s->size());
  std::size_t from = 0;
  for (std::size_t p = text.find(*old_s); p != std::string::npos; p = text.find(*old_s, from)) {
    out.append(text, from, p - from);
    out += *new_s;
    from = p + old_s->size();
  }
  out.append(text, from, std::string::npos);
  if (Status s = write_file(ws, *rel, out); !s) return {"edit: " + s.message(), true};
  return {"replaced " + plural(count, "occurrence") + " in " + *rel, false};
}

}  // namespace hearth::agent::detail
