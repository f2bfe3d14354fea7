// The run as pictures GitHub renders in a job summary: a Mermaid flowchart
// of the steps (one node per step, an edge per `needs`, coloured by status)
// and a Mermaid Gantt chart of when each step ran.
//
// Step ids and names come from the workflow file, which a pull request can
// change: nothing of them reaches the diagram's syntax. Node ids are
// generated (s0, s1, ...); flowchart labels hold only letters, digits,
// space, '_', '.' and '-', everything else as a Mermaid entity code
// (`#34;`); Gantt task names, where Mermaid reads no entity codes, hold the
// same safe characters with every other one replaced by '_', after the
// step's position (no Gantt keyword starts with a digit). No backtick, '<',
// '%', '#', ':', ';' or line break of theirs can appear, so no text can
// close the fence, start a Mermaid directive or comment, or inject Markdown
// or HTML.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"

namespace hearth::ci {

/// What the diagrams draw of one step besides its record.
struct StepShape {
  std::string name;                // display name (the step id when empty)
  std::vector<std::string> needs;  // step ids
};

/// A ```mermaid flowchart block: every step of `steps` a node labelled with
/// its name and status, an edge from each need to the step that needs it
/// (needs naming no step of `steps` are left out), classDef per status.
std::string mermaid_flowchart(const std::vector<engine::StepRecord>& steps,
                              const std::map<std::string, StepShape>& shapes);

/// A ```mermaid gantt block with a task per step that started (times in
/// Unix milliseconds); empty when no step started.
std::string mermaid_gantt(const std::vector<engine::StepRecord>& steps,
                          const std::map<std::string, StepShape>& shapes);

/// `text` as a flowchart label's content: safe characters kept, the rest
/// entity codes of their Unicode code points (invalid UTF-8 as U+FFFD).
std::string mermaid_label(const std::string& text);

}  // namespace hearth::ci
