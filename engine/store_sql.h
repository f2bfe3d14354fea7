// Private to the store's .cpp files: binding and reading SQLite values.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::engine::sql {

inline void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}
inline void bind_opt(sqlite3_stmt* st, int i, const std::optional<int64_t>& v) {
  if (v) sqlite3_bind_int64(st, i, *v);
  else sqlite3_bind_null(st, i);
}
inline std::string col_text(sqlite3_stmt* st, int i) {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : std::string();
}
inline std::string col_blob(sqlite3_stmt* st, int i) {
  auto* p = static_cast<const char*>(sqlite3_column_blob(st, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : std::string();
}
inline std::optional<int64_t> col_opt(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(st, i);
}
// Values can hold program output, which need not be UTF-8: invalid bytes
// become U+FFFD instead of throwing.
inline std::string to_db_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline nlohmann::json col_json(sqlite3_stmt* st, int i) {
  return nlohmann::json::parse(col_text(st, i), nullptr, /*allow_exceptions=*/false);
}

// Resets a cached statement when the scope ends.
struct Reset {
  sqlite3_stmt* st;
  ~Reset() {
    if (st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
  }
};

}  // namespace hearth::engine::sql

// The body of a Store write: prepares (cached) `sql_text`, runs `binds`
// (which see the statement as `st`), steps it. Sticky errors short-circuit.
#define HEARTH_WRITE(sql_text, what, binds)          \
  if (!sticky_.ok()) return sticky_;                 \
  sqlite3_stmt* st = prepare(sql_text);              \
  if (!st) return sticky_;                           \
  Reset reset{st};                                   \
  binds;                                             \
  return step_done(st, what)
