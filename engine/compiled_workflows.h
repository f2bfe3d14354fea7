// The compiled forms of the workflow snapshots runs were started with
// (workflows/compiled_form.h), in a table of this part's own through the
// store's StoreTables: a resume reads the run's workflow from there instead
// of loading its TOML text again.
//
// An entry is keyed by the snapshot's hash and path (the loader's result
// depends on both: the default name is the file's stem). It is trusted as
// far as the snapshot beside it: an entry that is not a complete form of
// this version for exactly that text (another format version, cut short,
// written for another hash) is ignored, the text is loaded, and the entry
// is written again. Entries are small next to the run rows that name them
// and are kept as long as the database.
#pragma once

#include "engine/store.h"
#include "workflows/loader.h"

namespace hearth::engine {

/// Brings the table to this hearth's version (outside a transaction).
Status prepare_compiled_workflows(Store& store);

class CompiledWorkflows {
 public:
  /// Brings the table to this hearth's version: call outside a transaction.
  /// When that fails (a newer hearth wrote the table) the cache is not
  /// used: load() loads every text and remember() keeps nothing.
  explicit CompiledWorkflows(Store& store);

  /// The workflow of `run`'s snapshot, exactly as
  /// load_workflow_text(run.workflow_text, run.workflow_path) gives it: from
  /// its compiled form when one is stored, else loaded from the text (and
  /// its form stored, inside the store's open transaction if there is one).
  workflows::LoadResult load(const RunRecord& run);

  /// Stores `wf`'s compiled form unless one is stored for its hash and path.
  /// Joins the store's open transaction, or commits on its own.
  Status remember(const workflows::Workflow& wf);

 private:
  Status store_form(const workflows::Workflow& wf);

  Store& store_;
  bool usable_ = false;
};

}  // namespace hearth::engine
