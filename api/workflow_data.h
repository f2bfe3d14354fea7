// What a public hearth::Workflow holds: the engine's own Workflow.
#pragma once

#include "hearth/workflow.h"
#include "workflows/workflow.h"

namespace hearth::detail {

struct WorkflowData {
  workflows::Workflow wf;
};

}  // namespace hearth::detail
