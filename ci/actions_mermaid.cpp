#include "ci/actions_mermaid.h"

#include <algorithm>

namespace hearth::ci {

namespace {

bool safe(uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_' ||
         c == '.' || c == '-';
}

// The next code point of UTF-8 `s` at `*i`, advancing `*i`; U+FFFD for an
// invalid or overlong sequence (one byte consumed).
uint32_t next_code_point(const std::string& s, size_t* i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(*i);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || *i + len > s.size()) return ++*i, 0xFFFD;
  uint32_t cp = len == 1 ? c : c & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if ((b(*i + k) & 0xC0) != 0x80) return ++*i, 0xFFFD;
    cp = (cp << 6) | (b(*i + k) & 0x3F);
  }
  static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return ++*i, 0xFFFD;
  *i += len;
  return cp;
}

// A Gantt task name: its position, then safe characters only (at most 60).
// Mermaid's Gantt reads keywords (section, title, dateFormat, click, ...)
// case-insensitively at the start of a line; none starts with a digit.
std::string gantt_name(size_t position, const std::string& text) {
  std::string out = std::to_string(position + 1) + ". ";
  for (size_t i = 0; i < text.size() && out.size() < 60;) {
    uint32_t cp = next_code_point(text, &i);
    out += safe(cp) ? static_cast<char>(cp) : '_';
  }
  return out;
}

const std::string& display_name(const engine::StepRecord& s, const std::map<std::string, StepShape>& shapes) {
  auto it = shapes.find(s.id);
  return it != shapes.end() && !it->second.name.empty() ? it->second.name : s.id;
}

const char* kClassDefs =
    "  classDef succeeded fill:#dafbe1,stroke:#1a7f37,color:#0f5323\n"
    "  classDef failed fill:#ffebe9,stroke:#cf222e,color:#82071e\n"
    "  classDef cancelled fill:#eaeef2,stroke:#57606a,color:#24292f\n"
    "  classDef skipped fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray:4 3\n"
    "  classDef running fill:#fff8c5,stroke:#9a6700,color:#4d2d00\n"
    "  classDef waiting fill:#fff8c5,stroke:#9a6700,color:#4d2d00,stroke-dasharray:4 3\n"
    "  classDef pending fill:#ffffff,stroke:#8c959f,color:#57606a\n";

}  // namespace

std::string mermaid_label(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = next_code_point(text, &i);
    out += safe(cp) ? std::string(1, static_cast<char>(cp)) : "#" + std::to_string(cp) + ";";
  }
  return out;
}

std::string mermaid_flowchart(const std::vector<engine::StepRecord>& steps,
                              const std::map<std::string, StepShape>& shapes) {
  std::map<std::string, std::string> node;  // step id -> generated node id
  for (size_t i = 0; i < steps.size(); ++i) node[steps[i].id] = "s" + std::to_string(i);
  std::string md = "```mermaid\nflowchart LR\n";
  for (auto& s : steps)
    md += "  " + node[s.id] + "[\"" + mermaid_label(display_name(s, shapes) + " - " + to_string(s.status)) +
          "\"]:::" + to_string(s.status) + "\n";  // each status has a classDef below
  for (auto& s : steps) {
    auto it = shapes.find(s.id);
    if (it == shapes.end()) continue;
    for (auto& need : it->second.needs)
      if (node.count(need)) md += "  " + node[need] + " --> " + node[s.id] + "\n";
  }
  return md + kClassDefs + "```\n";
}

std::string mermaid_gantt(const std::vector<engine::StepRecord>& steps,
                          const std::map<std::string, StepShape>& shapes) {
  std::string tasks;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto& s = steps[i];
    if (!s.started_at) continue;
    int64_t start = *s.started_at;
    int64_t end = std::max(s.finished_at.value_or(start), start + 1);  // a zero-length bar is not drawn
    std::string tag = s.status == StepStatus::succeeded ? "done, "
                      : s.status == StepStatus::failed  ? "crit, "
                      : s.status == StepStatus::running ? "active, "
                                                        : "";
    tasks += "  " + gantt_name(i, display_name(s, shapes)) + " :" + tag + "s" + std::to_string(i) + ", " +
             std::to_string(start) + ", " + std::to_string(end) + "\n";
  }
  if (tasks.empty()) return "";
  return "```mermaid\ngantt\n  dateFormat x\n  axisFormat %H:%M:%S\n  section steps\n" + tasks + "```\n";
}

}  // namespace hearth::ci
