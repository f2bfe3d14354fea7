// Any bytes from a hostile shim, in any chunking: the frame reader returns
// frames or an error, and the frames it returns re-encode to exactly the
// bytes they came from.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "commands/protocol.h"

using namespace hearth::commands;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t chunk = 1 + data[0] % 17;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  FrameReader r;
  std::string again;
  bool failed = false;
  for (size_t i = 0; i < bytes.size() && !failed; i += chunk) {
    failed = !r.push(bytes.substr(i, chunk)).ok();
    while (auto f = r.next()) again += encode_frame(f->type, f->payload);
  }
  if (bytes.substr(0, again.size()) != again) std::abort();
  if (!failed && again.size() + r.buffered() != bytes.size()) std::abort();
  return 0;
}
