// Private to the PostgreSQL store's .cpp files: values to libpq parameters
// and result cells back to values, the mirror of store_sql.h. Every
// parameter goes as text except bytes (bytea, sent binary); results come
// as text, bytea cells unescaped.
#pragma once

#include <libpq-fe.h>

#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/pg_store.h"

// A session's start in pg_stat_activity, in microseconds as text: with its
// pid, it names one session (a pid alone may be used again).
#define HEARTH_PG_SESSION_START "(EXTRACT(EPOCH FROM backend_start) * 1000000)::bigint::text"

namespace hearth::engine::pg {

/// One parameter: NULL, text, or bytes for a bytea column.
struct Param {
  std::optional<std::string> value;
  bool binary = false;
};

/// Bytes bound to, or read from, a bytea column.
struct Bytes {
  const std::string& bytes;
};
struct BytesOut {
  std::string& bytes;
};

// PostgreSQL's text holds valid UTF-8 without NUL; SQLite's held any bytes.
// Text that is not (program output in a reason, a path) is kept readable:
// invalid bytes become U+FFFD, NUL is dropped.
std::string valid_text(std::string_view s);

inline Param param(const std::string& s) { return {valid_text(s), false}; }
inline Param param(int v) { return {std::to_string(v), false}; }
inline Param param(int64_t v) { return {std::to_string(v), false}; }
inline Param param(bool v) { return {v ? "1" : "0", false}; }
inline Param param(const std::optional<int64_t>& v) { return v ? param(*v) : Param{}; }
inline Param param(const std::optional<std::string>& v) { return v ? param(*v) : Param{}; }
inline Param param(const Bytes& b) { return {b.bytes, true}; }
inline Param param(RunStatus s) { return {to_string(s), false}; }
inline Param param(StepStatus s) { return {to_string(s), false}; }
inline Param param(const SqlParam& p) {
  if (auto* n = std::get_if<int64_t>(&p)) return param(*n);
  if (auto* t = std::get_if<std::string_view>(&p)) return {valid_text(*t), false};
  return {};
}
template <class T>
Param param(const T&) = delete;

template <class... V>
std::vector<Param> params(const V&... values) {
  std::vector<Param> out;
  out.reserve(sizeof...(values));
  (out.push_back(param(values)), ...);
  return out;
}
inline std::vector<Param> params(std::initializer_list<SqlParam> list) {
  std::vector<Param> out;
  for (const auto& p : list) out.push_back(param(p));
  return out;
}

/// The cell as text (bytea unescaped); empty when NULL.
std::string cell(const PGresult* r, int row, int col);
inline int64_t cell_int(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  int64_t n = 0;
  std::from_chars(v, v + PQgetlength(r, row, col), n);
  return n;
}

// One cell read into a field, by the field's type.
inline void read(const PGresult* r, int i, int c, std::string& out) { out = cell(r, i, c); }
inline void read(const PGresult* r, int i, int c, int& out) { out = static_cast<int>(cell_int(r, i, c)); }
inline void read(const PGresult* r, int i, int c, int64_t& out) { out = cell_int(r, i, c); }
inline void read(const PGresult* r, int i, int c, bool& out) { out = cell_int(r, i, c) != 0; }
inline void read(const PGresult* r, int i, int c, std::optional<int64_t>& out) {
  out = PQgetisnull(r, i, c) ? std::nullopt : std::optional<int64_t>(cell_int(r, i, c));
}
inline void read(const PGresult* r, int i, int c, std::optional<int>& out) {
  out = PQgetisnull(r, i, c) ? std::nullopt : std::optional<int>(static_cast<int>(cell_int(r, i, c)));
}
inline void read(const PGresult* r, int i, int c, nlohmann::json& out) {
  if (!PQgetisnull(r, i, c)) out = nlohmann::json::parse(cell(r, i, c), nullptr, /*allow_exceptions=*/false);
}
/// A JSON array of strings; anything else in it is left out.
inline void read(const PGresult* r, int i, int c, std::vector<std::string>& out) {
  out.clear();
  auto j = nlohmann::json::parse(cell(r, i, c), nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return;
  for (auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
}
inline void read(const PGresult* r, int i, int c, BytesOut b) { b.bytes = cell(r, i, c); }
inline void read(const PGresult* r, int i, int c, RunStatus& out) { out = run_status_from(cell(r, i, c)); }
inline void read(const PGresult* r, int i, int c, StepStatus& out) { out = step_status_from(cell(r, i, c)); }
template <class T>
void read(const PGresult*, int, int, T&) = delete;

/// Reads columns 0..N-1 of row `i` into `fields`, in order.
template <class... F>
void read_all(const PGresult* r, int i, F&&... fields) {
  int c = 0;
  (read(r, i, c++, fields), ...);
}

}  // namespace hearth::engine::pg

namespace hearth::engine {

// What one pipeline came to (pg_store_pipeline.cpp).
struct PgStore::Piped {
  enum { ok, failed, lost } how = ok;
  pg::ResultPtr last{nullptr, PQclear};  // the answer to `last`
  std::string cause;                     // failed: the statement's wording and the server's reason
};

// A pipeline an attached commit sent and read the answers of on the loop
// (pg_store_async.cpp), handed to flush() as its first try.
struct PgStore::Answered {
  Piped piped;
  Session sent_on;  // the connection's session when it was sent
};

template <class... V>
Status PgStore::write(const char* sql, const char* what, const V&... values) {
  settle();
  if (!sticky_.ok()) return sticky_;
  if (in_transaction_) return defer(sql, pg::params(values...), what);
  auto r = run(sql, pg::params(values...), what);
  if (!r) return r.error();
  if (!in_transaction_) ++commits_;  // a write on its own is its own commit
  return {};
}

template <class Row, class... V>
Status PgStore::rows(const char* sql, const char* what, Row&& row, const V&... values) {
  settle();
  auto r = run(sql, pg::params(values...), what);
  if (!r) return r.error();
  const PGresult* res = r->get();
  for (int i = 0, n = PQntuples(res); i < n; ++i) row(res, i);
  return {};
}

}  // namespace hearth::engine
