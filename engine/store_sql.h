// Private to the store's .cpp files: binding and reading SQLite values.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sqlite_store.h"

namespace hearth::engine::sql {

inline void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}
inline void bind_opt(sqlite3_stmt* st, int i, const std::optional<int64_t>& v) {
  if (v) sqlite3_bind_int64(st, i, *v);
  else sqlite3_bind_null(st, i);
}
/// Bytes bound as a BLOB rather than TEXT.
struct Blob {
  const std::string& bytes;
};

// One value bound to parameter `i`: text, an integer, a blob, or NULL for an
// empty optional. Any other type is a compile error rather than a silent
// conversion (an unsigned or a double would bind as something else).
inline void bind(sqlite3_stmt* st, int i, const std::string& s) { bind_text(st, i, s); }
inline void bind(sqlite3_stmt* st, int i, int v) { sqlite3_bind_int(st, i, v); }
inline void bind(sqlite3_stmt* st, int i, int64_t v) { sqlite3_bind_int64(st, i, v); }
inline void bind(sqlite3_stmt* st, int i, bool v) { sqlite3_bind_int(st, i, v ? 1 : 0); }
inline void bind(sqlite3_stmt* st, int i, const std::optional<int64_t>& v) { bind_opt(st, i, v); }
inline void bind(sqlite3_stmt* st, int i, const std::optional<std::string>& v) {
  if (v) bind_text(st, i, *v);
  else sqlite3_bind_null(st, i);
}
inline void bind(sqlite3_stmt* st, int i, const Blob& b) {
  sqlite3_bind_blob(st, i, b.bytes.data(), static_cast<int>(b.bytes.size()), SQLITE_TRANSIENT);
}
// A status is stored as its word (statuses.h).
inline void bind(sqlite3_stmt* st, int i, RunStatus s) { sqlite3_bind_text(st, i, to_string(s), -1, SQLITE_STATIC); }
inline void bind(sqlite3_stmt* st, int i, StepStatus s) { sqlite3_bind_text(st, i, to_string(s), -1, SQLITE_STATIC); }
template <class T>
void bind(sqlite3_stmt*, int, const T&) = delete;

inline void bind(sqlite3_stmt* st, int i, const SqlParam& p) {
  if (auto* n = std::get_if<int64_t>(&p)) sqlite3_bind_int64(st, i, *n);
  else if (auto* t = std::get_if<std::string_view>(&p))
    sqlite3_bind_text(st, i, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}
/// A list of parameters from outside the engine (StoreTables), in order.
inline void bind_all(sqlite3_stmt* st, std::initializer_list<SqlParam> params) {
  int i = 0;
  for (const auto& p : params) bind(st, ++i, p);
}

/// Binds `values` to ?1..?N in order.
template <class... V>
void bind_all(sqlite3_stmt* st, const V&... values) {
  int i = 0;
  (bind(st, ++i, values), ...);
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

/// Bytes read from a BLOB column (read_all's counterpart of Blob).
struct BlobOut {
  std::string& bytes;
};

// One column read into a field, by the field's type: the mirror of bind().
// A nullable JSON column read as NULL leaves the field null.
inline void read(sqlite3_stmt* st, int i, std::string& out) { out = col_text(st, i); }
inline void read(sqlite3_stmt* st, int i, int& out) { out = sqlite3_column_int(st, i); }
inline void read(sqlite3_stmt* st, int i, int64_t& out) { out = sqlite3_column_int64(st, i); }
inline void read(sqlite3_stmt* st, int i, bool& out) { out = sqlite3_column_int(st, i) != 0; }
inline void read(sqlite3_stmt* st, int i, std::optional<int64_t>& out) { out = col_opt(st, i); }
inline void read(sqlite3_stmt* st, int i, std::optional<int>& out) {
  auto v = col_opt(st, i);
  out = v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}
inline void read(sqlite3_stmt* st, int i, nlohmann::json& out) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return;
  // Most steps have no outputs: their '{}' needs no parser.
  auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  if (text && sqlite3_column_bytes(st, i) == 2 && std::string_view(text, 2) == "{}") {
    out = nlohmann::json::object();
    return;
  }
  out = col_json(st, i);
}
/// A JSON array of strings; anything else in it is left out.
inline void read(sqlite3_stmt* st, int i, std::vector<std::string>& out) {
  out.clear();
  auto j = col_json(st, i);
  if (!j.is_array()) return;
  for (auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
}
inline void read(sqlite3_stmt* st, int i, BlobOut b) { b.bytes = col_blob(st, i); }
inline void read(sqlite3_stmt* st, int i, RunStatus& out) { out = run_status_from(col_text(st, i)); }
inline void read(sqlite3_stmt* st, int i, StepStatus& out) { out = step_status_from(col_text(st, i)); }
template <class T>
void read(sqlite3_stmt*, int, T&) = delete;

/// Reads columns 0..N-1 of the current row into `fields`, in order.
template <class... F>
void read_all(sqlite3_stmt* st, F&&... fields) {
  int i = 0;
  (read(st, i++, fields), ...);
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

namespace hearth::engine {

template <class F>
Status SqliteStore::stage(F body) {
  if (!staging()) return body();
  if (!sticky_.ok()) return sticky_;
  if (in_transaction_) {
    staged_.emplace_back(std::move(body));
    return {};
  }
  if (auto s = begin(); !s.ok()) return s;
  staged_.emplace_back(std::move(body));
  return commit();
}

template <class... V>
Status SqliteStore::write(const char* sql, const char* what, const V&... values) {
  if (auto s = failure(); !s.ok()) return s;
  sqlite3_stmt* st = prepare(sql);
  if (!st) return failure();
  sql::Reset reset{st};
  sql::bind_all(st, values...);
  Status s = step_done(st, what);
  // A write on its own is its own commit (when_durable counts it).
  if (s.ok() && !on_pool_ && !in_transaction_) counted_commit();
  return s;
}

template <class Row, class... V>
Status SqliteStore::rows(const char* sql, const char* what, Row&& row, const V&... values) {
  if (auto s = before_read(); !s.ok()) return s;
  sqlite3_stmt* st = prepare(sql);
  if (!st) return failure();
  sql::Reset reset{st};
  sql::bind_all(st, values...);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  if (rc != SQLITE_DONE) return fail(what);
  return {};
}

}  // namespace hearth::engine
