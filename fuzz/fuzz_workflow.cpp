// Any bytes as a workflow file: loading must return a workflow or errors,
// never crash, hang or leak; a loaded workflow's hash is always set.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflows/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = hearth::workflows::load_workflow_text(text, "fuzz.toml");
  if (r.workflow.has_value() != r.errors.empty()) std::abort();
  if (r.workflow && r.workflow->hash.rfind("sha256:", 0) != 0) std::abort();
  for (auto& e : r.errors)
    if (e.rfind("fuzz.toml:", 0) != 0) std::abort();  // every error names the file and place
  return 0;
}
