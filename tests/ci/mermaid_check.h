// Reads the Mermaid blocks of a job summary back by a strict grammar: the
// lines `hearth ci` may write, and nothing else. A line outside it, an
// unclosed fence, a label character outside the safe set or a class without
// its classDef is an error, so hostile step names that broke out of the
// syntax would show up here.
#pragma once

#include <cstdint>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace hearth::testing::mermaid {

struct Flowchart {
  std::map<std::string, std::string> label;  // node id -> decoded label
  std::map<std::string, std::string> cls;    // node id -> class
  std::set<std::pair<std::string, std::string>> edges;
  std::set<std::string> class_defs;
};

struct GanttTask {
  std::string name, tag, id;
  int64_t start = 0, end = 0;
};

struct Diagrams {
  std::vector<Flowchart> flowcharts;
  std::vector<std::vector<GanttTask>> gantts;
  std::vector<std::string> errors;
};

inline std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) s += {static_cast<char>(0xC0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3F))};
  else if (cp < 0x10000)
    s += {static_cast<char>(0xE0 | cp >> 12), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
          static_cast<char>(0x80 | (cp & 0x3F))};
  else
    s += {static_cast<char>(0xF0 | cp >> 18), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
          static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
  return s;
}

// A label's entity codes (#34;) decoded.
inline std::string decode(const std::string& label) {
  static const std::regex entity("#([0-9]+);");
  std::string out;
  auto last = label.cbegin();
  for (std::sregex_iterator it(label.begin(), label.end(), entity), end; it != end; ++it) {
    out.append(last, label.cbegin() + it->position());
    out += utf8(static_cast<uint32_t>(std::stoul((*it)[1].str())));
    last = label.cbegin() + it->position() + it->length();
  }
  return out.append(last, label.cend());
}

inline void read_flowchart(const std::vector<std::string>& lines, Diagrams* d) {
  static const std::regex node(R"re(  (s[0-9]+)\["([A-Za-z0-9 _.\-]|#[0-9]+;)*"\]:::([a-z]+))re");
  static const std::regex label_of(R"re(\["(.*)"\])re");
  static const std::regex edge(R"re(  (s[0-9]+) --> (s[0-9]+))re");
  static const std::regex class_def(R"re(  classDef ([a-z]+) [a-z:#0-9, -]+)re");
  Flowchart f;
  std::smatch m;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (std::regex_match(l, m, node)) {
      std::string id = m[1], cls = m[3];
      std::regex_search(l, m, label_of);
      f.label[id] = decode(m[1]);
      f.cls[id] = cls;
    } else if (std::regex_match(l, m, edge)) {
      f.edges.insert({m[1], m[2]});
    } else if (std::regex_match(l, m, class_def)) {
      f.class_defs.insert(m[1]);
    } else {
      d->errors.push_back("flowchart line outside the grammar: " + l);
    }
  }
  for (auto& [id, cls] : f.cls)
    if (!f.class_defs.count(cls)) d->errors.push_back("class without classDef: " + cls);
  for (auto& [from, to] : f.edges)
    if (!f.label.count(from) || !f.label.count(to)) d->errors.push_back("edge to an undeclared node: " + from + "->" + to);
  d->flowcharts.push_back(std::move(f));
}

inline void read_gantt(const std::vector<std::string>& lines, Diagrams* d) {
  static const std::regex task(R"re(  ([0-9]+\. [A-Za-z0-9 _.\-]*) :((done|crit|active), )?(s[0-9]+), ([0-9]+), ([0-9]+))re");
  std::vector<GanttTask> tasks;
  std::smatch m;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l == "  dateFormat x" || l == "  axisFormat %H:%M:%S" || l == "  section steps") continue;
    if (!std::regex_match(l, m, task)) {
      d->errors.push_back("gantt line outside the grammar: " + l);
      continue;
    }
    GanttTask t{m[1], m[3], m[4], std::stoll(m[5]), std::stoll(m[6])};
    if (t.end <= t.start) d->errors.push_back("gantt task ends before it starts: " + l);
    tasks.push_back(t);
  }
  d->gantts.push_back(std::move(tasks));
}

/// Every ```mermaid block of `markdown`, read by the grammar above.
inline Diagrams read(const std::string& markdown) {
  Diagrams d;
  std::istringstream in(markdown);
  std::string line;
  bool in_block = false;
  std::vector<std::string> block;
  while (std::getline(in, line)) {
    if (!in_block) {
      if (line == "```mermaid") in_block = true, block.clear();
      else if (line.find("mermaid") != std::string::npos && line.rfind("```", 0) == 0)
        d.errors.push_back("odd mermaid fence: " + line);
      continue;
    }
    if (line != "```") {
      block.push_back(line);
      continue;
    }
    in_block = false;
    if (block.empty()) d.errors.push_back("empty mermaid block");
    else if (block[0] == "flowchart LR") read_flowchart(block, &d);
    else if (block[0] == "gantt") read_gantt(block, &d);
    else d.errors.push_back("unknown diagram: " + block[0]);
  }
  if (in_block) d.errors.push_back("a mermaid block is not closed");
  return d;
}

}  // namespace hearth::testing::mermaid
