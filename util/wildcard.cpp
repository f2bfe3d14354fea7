#include "util/wildcard.h"

namespace hearth {

namespace {

bool same_char(char a, char b, bool fold) {
  if (a == b) return true;
  if (!fold) return false;
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; };
  return lower(static_cast<unsigned char>(a)) == lower(static_cast<unsigned char>(b)) &&
         static_cast<unsigned char>(a) < 0x80 && static_cast<unsigned char>(b) < 0x80;
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view text, const WildcardOptions& o) {
  auto wild = [&](size_t p, char c) { return pattern[p] == c && !(o.escaped && (*o.escaped)[p]); };
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < text.size()) {
    if (p < pattern.size() && wild(p, '*')) {
      star = p++;
      mark = i;
    } else if (p < pattern.size() &&
               ((o.question_mark && wild(p, '?')) || same_char(pattern[p], text[i], o.fold_ascii_case))) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && wild(p, '*')) ++p;
  return p == pattern.size();
}

}  // namespace hearth
