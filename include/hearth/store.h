// The run store as a whole: what a store holds and its schema version
// (`hearth store check`), and copying a whole history from one store to
// another (`hearth store migrate`, from a SQLite file to PostgreSQL or
// back). A store is named as everywhere else: a path of a SQLite file, or a
// postgres:// (postgresql://) URL, whose password no message shows.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hearth/export.h"
#include "hearth/status.h"

namespace hearth {

/// A store as found, nothing changed in it.
struct StoreInfo {
  std::string backend;       // "sqlite" | "postgres"
  std::string location;      // the path, or the URL without its password
  int schema_found = 0;      // the engine's schema version in it; 0: empty, no schema yet
  int schema_current = 0;    // the version this hearth writes
  std::vector<std::pair<std::string, int64_t>> parts;  // the parts' own tables: name, version
  int64_t runs = 0;          // runs it holds

  /// What opening it with this hearth would do to its schema.
  enum class Migration { none, upgrade, refused };
  Migration migration() const {
    if (schema_found > schema_current) return Migration::refused;
    return schema_found < schema_current ? Migration::upgrade : Migration::none;
  }
};

/// Reads what `location` holds without writing to it (a SQLite file is
/// opened read-only and must exist). An Error names the place and cause.
HEARTH_API Result<StoreInfo> inspect_store(const std::string& location);

/// What a migration copied.
struct StoreMigration {
  std::string from, to;  // as shown: URLs without their password
  std::vector<std::pair<std::string, int64_t>> rows;  // table, rows copied (and counted on both sides)
};

/// Copies the whole history held at `from` into the empty store at `to` in
/// one transaction on `to`, then counts each table's rows on both sides
/// before committing. `from` must exist; it is brought to this hearth's
/// schema (as any command opening it would) and otherwise only read. Refused
/// when `to` already holds runs or deliveries, when either has a schema
/// newer than this hearth's, or when they are the same store. A failure at
/// any point leaves `to` without any of the history.
HEARTH_API Result<StoreMigration> migrate_store(const std::string& from, const std::string& to);

}  // namespace hearth
