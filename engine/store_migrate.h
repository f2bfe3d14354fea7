// Copying a store's whole history into another store, of either backend:
// `hearth store migrate` (docs/serve.md, "Migrating from SQLite"). The
// engine's tables go through the Store interface, so what is copied is what
// the engine reads back; the tables of parts outside the engine (the
// delivery queue, compiled workflows: store_tables.h) are copied column by
// column, whatever they are.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/store.h"

namespace hearth::engine {

/// The text of statements built while copying. The stores cache a
/// statement by the address of its text (store_tables.h), so these must
/// stay where they are while the stores live. REQUIRES: outlives the stores
/// given to copy_history (declare it before them).
using SqlTexts = std::deque<std::string>;

struct TableRows {
  std::string table;
  int64_t rows = 0;
};

/// Copies every table `from` holds into `to`, in one transaction on `to`,
/// and compares the rows of each table on both sides before committing.
/// `from` is read in one transaction of its own (a consistent snapshot; on
/// SQLite it holds the write lock meanwhile) and never written.
///
/// REQUIRES: both stores opened at this build's schema, with the tables of
/// every part this build knows made on both (their owners' migrate()), so
/// that the same part has the same columns on either side.
///
/// Refused, with nothing written: `to` already holds a run or a row of a
/// part's table; `from` holds a table no part of this build makes (a newer
/// hearth's), or a part at another version than `to`. Runs are copied
/// without their lease: no engine runs them in `to` yet. Any failure rolls
/// `to` back, so a migration that did not finish leaves it as it was.
/// Returns the rows copied, per table.
Result<std::vector<TableRows>> copy_history(Store& from, Store& to, SqlTexts& texts);

}  // namespace hearth::engine
