// The SQLite store's schema: the migrations from each version to the next,
// in order. A new database is not made by replaying them: the build runs them
// once (sqlite_schema_gen.cpp) and keeps the schema they leave, which a new
// file gets in one statement list (sqlite_fresh_schema.h, generated).
#pragma once

namespace hearth::engine {

inline constexpr int kSqliteSchemaVersion = 10;

/// Entry i migrates a database from version i to i + 1 (PRAGMA user_version).
extern const char* const kSqliteMigrations[kSqliteSchemaVersion];

}  // namespace hearth::engine
