// A validated Workflow written out as text, and read back without TOML or
// the loader's checks: what lets a resume skip loading the run's snapshot
// again (engine/snapshot_cache.h keeps these in the state database).
//
// The form holds every field of the Workflow except its text and path,
// which the reader is given (the run record holds both). Expressions,
// templates and body patterns are kept as their source and compiled again
// when read: that is their own small parsers, not TOML, and it keeps the
// form free of pointers. JSON values (the inputs schema, a result schema)
// are kept node by node, so numbers keep their exact type and value.
//
// The form is plain text with no NUL byte (a TEXT column on any database):
// a string is "<length>:<bytes>", a number "<decimal>;".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "workflows/workflow.h"

namespace hearth::workflows {

/// The version of the form written now; a form of another version is not read.
inline constexpr int kCompiledFormVersion = 1;

/// `wf`'s compiled form, or nullopt for a workflow the form cannot give
/// back exactly as the loader gives it, which is then loaded from its text
/// each time: one whose result schema was read from a file beside it (the
/// loader reads that file again, as it is then), or one holding a NUL
/// character in a string.
std::optional<std::string> encode_compiled(const Workflow& wf);

/// The Workflow that `form` holds for the snapshot `text` read from `path`:
/// equal, field by field, to what load_workflow_text(text, path) gives.
/// nullopt, never an exception, when `form` is not a complete form of this
/// version written for exactly this text (by its sha256) and path: the
/// caller then loads the text.
std::optional<Workflow> decode_compiled(std::string_view form, std::string_view text, const std::string& path);

}  // namespace hearth::workflows
