// What a store holds, read without changing it: which backend, the schema
// version found against the one this build writes, the versions of the
// parts' tables (store_tables.h) and how many runs it keeps. For `hearth
// store check`, which must not migrate what it looks at (Store::open does).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace hearth::engine {

struct StoreVersions {
  std::string backend;   // "sqlite" | "postgres"
  std::string shown;     // the path, or the URL without its password
  int found = 0;         // the engine's schema version in the store; 0: none yet (empty)
  int current = 0;       // the version this build writes
  std::vector<std::pair<std::string, int64_t>> parts;  // part -> version found, by name
  int64_t runs = 0;      // runs recorded (0 when there is no schema yet)
};

/// Reads `location` (a SQLite path or a postgres:// URL) without writing to
/// it: a SQLite file is opened read-only, and must exist; a PostgreSQL
/// database is only read. An Error names the place and the cause (a missing
/// file, a refused connection, a damaged file), the password never shown.
Result<StoreVersions> inspect_store(const std::string& location);

}  // namespace hearth::engine
