// Files for tests: a temporary directory removed at scope exit, whole-file
// reads and writes, and the substring check most assertions use.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/names.h"

namespace hearth::testing {

/// The whole file, or "" when it cannot be read.
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes `text` to `p`, creating the directories above it.
inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

/// Writes `text` to `p` as a program (mode 0755); returns the path.
inline std::string write_executable(const std::filesystem::path& p, const std::string& text) {
  write_file(p, text);
  ::chmod(p.c_str(), 0755);
  return p.string();
}

/// A directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/hearth-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path.string(); }
  /// Writes `text` to `rel` under the directory; returns its path.
  std::filesystem::path write(const std::filesystem::path& rel, const std::string& text) const {
    write_file(path / rel, text);
    return path / rel;
  }
};

/// Whether `part` occurs in `text`.
inline bool has(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

/// The lines of `text`, without their newlines.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace hearth::testing
