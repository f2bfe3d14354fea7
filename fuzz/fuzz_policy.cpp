// A pattern (first line) against arguments (the other lines, one each):
// parsing never crashes, matching terminates, and a parsed pattern that is
// a single literal argument list matches exactly that list.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "commands/policy.h"

using namespace hearth::commands;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  auto p = parse_pattern(line);
  std::vector<std::string> args;
  while (std::getline(in, line)) args.push_back(line);
  if (!p) return 0;
  bool m = matches(*p, args);
  // All-literal patterns match exactly their own tokens.
  bool literal = true;
  std::vector<std::string> own;
  for (auto& t : p->tokens) {
    literal = literal && t.kind == PatternToken::literal;
    own.push_back(t.text);
  }
  if (literal && m != (own == args)) std::abort();
  if (literal && !matches(*p, own)) std::abort();
  Policy pol{"x", {*p}, {}, {}};
  (void)decide(pol, args);
  (void)quote_args(args);
  return 0;
}
