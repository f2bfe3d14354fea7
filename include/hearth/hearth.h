// libhearth: the whole public API. See docs/embedding.md.
#pragma once

#include "hearth/engine.h"
#include "hearth/process.h"
#include "hearth/status.h"
#include "hearth/workflow.h"

namespace hearth {
/// The library's version, "MAJOR.MINOR.PATCH".
HEARTH_API const char* version();
}  // namespace hearth
