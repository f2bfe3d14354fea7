// Times the agent's file tools on a real tree: the median of N calls of each
// tool. Usage: agent_tools_bench [workspace] [calls]  (default: this source
// tree, 20 calls). Measures; asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/tools.h"

int main(int argc, char** argv) {
  std::string root = argc > 1 ? argv[1] : ".";
  int calls = argc > 2 ? std::stoi(argv[2]) : 20;
  auto tools = hearth::agent::FileTools::open(root);
  if (!tools) {
    std::fprintf(stderr, "%s\n", tools.message().c_str());
    return 1;
  }
  std::printf("workspace %s, openat2: %s\n", root.c_str(), tools->workspace().uses_openat2() ? "yes" : "no");
  struct Case { const char* tool; nlohmann::json args; };
  std::vector<Case> cases = {
      {"glob", {{"pattern", "**/*.cpp"}}},
      {"grep", {{"pattern", "Result<"}, {"glob", "*.h"}, {"max_results", 2000}}},
      {"grep", {{"pattern", "noSuchIdentifier[0-9]+"}}},
      {"read", {{"path", "agent/file_tools.cpp"}}},
  };
  for (const auto& c : cases) {
    std::vector<double> ms;
    std::size_t bytes = 0;
    for (int i = 0; i < calls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = tools->call(c.tool, c.args);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      bytes = r.text.size();
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-5s %-70s median %8.3f ms  max %8.3f ms  result %zu bytes\n", c.tool, c.args.dump().c_str(),
                ms[ms.size() / 2], ms.back(), bytes);
  }
}
