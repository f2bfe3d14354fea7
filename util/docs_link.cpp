#include "util/docs_link.h"

#include <cctype>
#include <filesystem>
#include <system_error>

#ifndef HEARTH_DOCS_URL
#define HEARTH_DOCS_URL ""
#endif

namespace hearth {

namespace {

// The anchor GitHub gives a heading: lower case, spaces to '-', and only
// letters, digits, '-' and '_' kept.
std::string anchor_of(std::string_view heading) {
  std::string out;
  for (char c : heading) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) out += static_cast<char>(std::tolower(u));
    else if (c == ' ' || c == '-') out += '-';
    else if (c == '_') out += c;
  }
  return out;
}

}  // namespace

std::string docs_link(std::string_view page, std::string_view heading) {
  namespace fs = std::filesystem;
  std::string_view base = HEARTH_DOCS_URL;
  if (!base.empty()) {
    while (base.ends_with('/')) base.remove_suffix(1);
    return std::string(base) + "/" + std::string(page) + (heading.empty() ? "" : "#" + anchor_of(heading));
  }
  std::string section = heading.empty() ? "" : ", \"" + std::string(heading) + "\"";
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = self.parent_path().parent_path() / "share" / "doc" / "hearth" / "docs" / page;
    if (fs::is_regular_file(installed, ec)) return installed.string() + section;
  }
  return "docs/" + std::string(page) + " in Hearth's source" + section;
}

}  // namespace hearth
