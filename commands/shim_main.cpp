// hearth-shim: the granted-command shim as its own small, statically linked
// program. Linked under a command's name on a step's PATH, it forwards the
// call to the broker (shim.cpp). Separate from `hearth` because a call pays
// for loading its binary: the full engine costs ≈5 ms to start, this ≈0.3 ms.
#include <cstdlib>

#include "commands/broker.h"

int main(int argc, char** argv) {
  const char* socket = std::getenv("HEARTH_COMMAND_SOCKET");
  const char* root = std::getenv("HEARTH_WORKSPACE");
  return hearth::commands::run_shim(argc, argv, socket ? socket : "/run/hearth/commands.sock", root ? root : "/workspace");
}
