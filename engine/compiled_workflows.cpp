// The compiled_workflows table (portable SQL: TEXT columns, ON CONFLICT
// upserts) and the choice between a stored form and loading the text.
#include "engine/compiled_workflows.h"

#include "engine/store_tables.h"
#include "workflows/compiled_form.h"

namespace hearth::engine {

namespace {

// Version 1 of the table.
Status create_table(StoreTables& t) {
  return t.execute(R"sql(
CREATE TABLE compiled_workflows (
  hash TEXT NOT NULL,
  path TEXT NOT NULL,
  form TEXT NOT NULL,
  PRIMARY KEY (hash, path)
))sql",
                   {}, "cannot create the table of compiled workflows");
}

constexpr StoreTables::Migration kMigrations[] = {create_table};

}  // namespace

Status prepare_compiled_workflows(Store& store) { return store.tables().migrate("compiled_workflows", kMigrations); }

CompiledWorkflows::CompiledWorkflows(Store& store) : store_(store) { usable_ = prepare_compiled_workflows(store).ok(); }

workflows::LoadResult CompiledWorkflows::load(const RunRecord& run) {
  if (usable_) {
    auto rows = store_.tables().query("SELECT form FROM compiled_workflows WHERE hash=?1 AND path=?2",
                                      {run.workflow_hash, run.workflow_path}, "cannot read a compiled workflow");
    if (rows && !rows->empty()) {
      if (auto wf = workflows::decode_compiled(rows->front().text(0), run.workflow_text, run.workflow_path)) {
        workflows::LoadResult result;
        result.workflow = std::move(*wf);
        return result;
      }
    }
  }
  auto loaded = workflows::load_workflow_text(run.workflow_text, run.workflow_path);
  // A failure to store the form is the store's own (sticky) failure: the
  // caller's next write reports it.
  if (loaded.ok() && usable_) (void)store_form(*loaded.workflow);
  return loaded;
}

Status CompiledWorkflows::remember(const workflows::Workflow& wf) {
  if (!usable_) return {};
  auto rows = store_.tables().query("SELECT 1 FROM compiled_workflows WHERE hash=?1 AND path=?2", {wf.hash, wf.path},
                                    "cannot read a compiled workflow");
  if (!rows) return rows.status();
  if (!rows->empty()) return {};
  return store_form(wf);
}

Status CompiledWorkflows::store_form(const workflows::Workflow& wf) {
  auto form = workflows::encode_compiled(wf);
  if (!form) return {};  // a workflow loaded from its text each time
  return store_.tables().execute(
      "INSERT INTO compiled_workflows (hash, path, form) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (hash, path) DO UPDATE SET form=excluded.form",
      {wf.hash, wf.path, *form}, "cannot store a compiled workflow");
}

}  // namespace hearth::engine
