// Any bytes as an expression: parse, and when it parses, evaluate it against
// a context with every kind of JSON value. Errors are values, never crashes.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "workflows/expr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto e = hearth::workflows::expr::Expression::parse(text);
  if (!e) return 0;
  static const nlohmann::json context = {
      {"inputs", {{"issue", 12}, {"title", "a \"quoted\" title"}, {"labels", {"bug", "p1"}}, {"n", nullptr}, {"f", 1.5}}},
      {"env", {{"HOME", "/home/x"}}},
      {"steps", {{"a", {{"outputs", {{"json", "{\"k\":[1,2]}"}}}, {"result", {{"severity", "low"}}}}}}},
      {"run", {{"id", "r1"}}}};
  (void)e->evaluate(context, {});
  return 0;
}
