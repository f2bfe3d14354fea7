// inspect_store (store_inspect.h): the schema versions of a store, read with
// the backend's own client and no migration.
#include "engine/store_inspect.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "engine/pg_store.h"
#include "engine/sqlite_store.h"

namespace hearth::engine {

namespace {

using SqlitePtr = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;
using PgConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using PgResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Calls `row` with each row of `sql` on `db`; false (with sqlite3_errmsg
// naming why) when the statement fails.
template <class Row>
bool sqlite_rows(sqlite3* db, const char* sql, Row&& row) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return false;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE;
}

Result<StoreVersions> inspect_sqlite(const std::string& path) {
  StoreVersions v{"sqlite", path, 0, SqliteStore::schema_version(), {}, 0};
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Error{"no state database at " + path + " (nothing to check; `hearth run` creates it)"};
  if (!std::filesystem::is_regular_file(path, ec)) return Error{path + " is not a file, so not a state database"};
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  SqlitePtr db(raw, &sqlite3_close);
  if (rc != SQLITE_OK)
    return Error{"cannot open the state database " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc))};
  int64_t lock_deadline_ns = 0;
  sqlite3_busy_handler(db.get(), wait_for_lock, &lock_deadline_ns);
  auto failed = [&](const char* what) {
    std::string cause = sqlite3_errmsg(db.get());
    int code = sqlite3_errcode(db.get());
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) cause += " (the file is damaged or not a state database)";
    return Error{"state database " + path + ": " + what + ": " + cause};
  };
  bool has_runs = false, has_parts = false;
  if (!sqlite_rows(db.get(), "PRAGMA user_version", [&](sqlite3_stmt* st) { v.found = sqlite3_column_int(st, 0); }))
    return failed("cannot read the schema version");
  if (!sqlite_rows(db.get(), "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('runs', 'part_versions')",
                   [&](sqlite3_stmt* st) {
                     std::string name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
                     has_runs = has_runs || name == "runs";
                     has_parts = has_parts || name == "part_versions";
                   }))
    return failed("cannot list the tables");
  if (has_runs &&
      !sqlite_rows(db.get(), "SELECT count(*) FROM runs", [&](sqlite3_stmt* st) { v.runs = sqlite3_column_int64(st, 0); }))
    return failed("cannot count the runs");
  if (has_parts && !sqlite_rows(db.get(), "SELECT part, version FROM part_versions ORDER BY part", [&](sqlite3_stmt* st) {
        v.parts.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1));
      }))
    return failed("cannot read the versions of the parts' tables");
  return v;
}

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.rfind("ERROR:  ", 0) == 0) s.erase(0, 8);
  return s;
}

Result<StoreVersions> inspect_postgres(const std::string& url) {
  StoreVersions v{"postgres", redact_url(url), 0, PgStore::schema_version(), {}, 0};
  PgConnPtr conn(PQconnectdb(url.c_str()), &PQfinish);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
    return Error{"cannot connect to the state database " + v.shown + ": " +
                 redact_password(trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"), url)};
  // Rows of `sql`, or an Error naming `what`.
  auto query = [&](const char* sql, const char* what) -> Result<PgResultPtr> {
    PgResultPtr r(PQexec(conn.get(), sql), &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      return Error{"state database " + v.shown + ": " + what + ": " +
                   redact_password(trimmed(PQerrorMessage(conn.get())), url)};
    return r;
  };
  auto number = [](const PGresult* r, int row, int col) { return std::strtoll(PQgetvalue(r, row, col), nullptr, 10); };
  auto tables = query(
      "SELECT to_regclass('schema_version') IS NOT NULL, to_regclass('runs') IS NOT NULL, "
      "to_regclass('part_versions') IS NOT NULL",
      "cannot list the tables");
  if (!tables) return tables.error();
  auto yes = [&](int col) { return std::string(PQgetvalue(tables->get(), 0, col)) == "t"; };
  if (yes(0)) {
    auto r = query("SELECT version FROM schema_version", "cannot read the schema version");
    if (!r) return r.error();
    if (PQntuples(r->get()) > 0) v.found = static_cast<int>(number(r->get(), 0, 0));
  }
  if (yes(1)) {
    auto r = query("SELECT count(*) FROM runs", "cannot count the runs");
    if (!r) return r.error();
    v.runs = number(r->get(), 0, 0);
  }
  if (yes(2)) {
    auto r = query("SELECT part, version FROM part_versions ORDER BY part", "cannot read the versions of the parts' tables");
    if (!r) return r.error();
    for (int i = 0, n = PQntuples(r->get()); i < n; ++i) v.parts.emplace_back(PQgetvalue(r->get(), i, 0), number(r->get(), i, 1));
  }
  return v;
}

}  // namespace

Result<StoreVersions> inspect_store(const std::string& location) {
  return is_postgres_location(location) ? inspect_postgres(location) : inspect_sqlite(location);
}

}  // namespace hearth::engine
