// The SQLite store's StoreTables: the tables of parts outside the engine,
// versioned in part_versions, written in the store's own transactions.
#include <sqlite3.h>

#include "engine/part_migrations.h"
#include "engine/store_sql.h"

namespace hearth::engine {

using namespace sql;

const std::string& SqlRow::text(size_t i) const {
  static const std::string kNone;
  auto* s = i < columns.size() ? std::get_if<std::string>(&columns[i]) : nullptr;
  return s ? *s : kNone;
}

int64_t SqlRow::integer(size_t i) const {
  auto* n = i < columns.size() ? std::get_if<int64_t>(&columns[i]) : nullptr;
  return n ? *n : 0;
}

std::string SqlRow::take_text(size_t i) {
  auto* s = i < columns.size() ? std::get_if<std::string>(&columns[i]) : nullptr;
  return s ? std::move(*s) : std::string();
}

namespace {

SqlRow read_row(sqlite3_stmt* st) {
  SqlRow row;
  int n = sqlite3_column_count(st);
  row.columns.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    switch (sqlite3_column_type(st, i)) {
      case SQLITE_NULL: row.columns.emplace_back(std::monostate{}); break;
      case SQLITE_INTEGER: row.columns.emplace_back(sqlite3_column_int64(st, i)); break;
      case SQLITE_BLOB: row.columns.emplace_back(col_blob(st, i)); break;
      default: row.columns.emplace_back(col_text(st, i)); break;
    }
  }
  return row;
}

}  // namespace

Status SqliteStore::execute(const char* sql, std::initializer_list<SqlParam> params, const char* what) {
  if (!staging()) return write(sql, what, params);
  // Staged: the parameters' text is copied, for the pool to bind later.
  std::vector<std::variant<std::monostate, int64_t, std::string>> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    if (auto* n = std::get_if<int64_t>(&p)) values.emplace_back(*n);
    else if (auto* t = std::get_if<std::string_view>(&p)) values.emplace_back(std::string(*t));
    else values.emplace_back(std::monostate{});
  }
  return stage([this, sql, what, values = std::move(values)] {
    if (auto s = failure(); !s.ok()) return s;
    sqlite3_stmt* st = prepare(sql);
    if (!st) return failure();
    Reset reset{st};
    int i = 0;
    for (const auto& v : values) {
      ++i;
      if (auto* n = std::get_if<int64_t>(&v)) sqlite3_bind_int64(st, i, *n);
      else if (auto* t = std::get_if<std::string>(&v)) bind_text(st, i, *t);
      else sqlite3_bind_null(st, i);
    }
    return step_done(st, what);
  });
}

Result<std::vector<SqlRow>> SqliteStore::query(const char* sql, std::initializer_list<SqlParam> params,
                                               const char* what) {
  std::vector<SqlRow> out;
  auto s = rows(sql, what, [&](sqlite3_stmt* st) { out.push_back(read_row(st)); }, params);
  if (!s.ok()) return s.error();
  // A write with RETURNING outside a transaction is a commit of its own.
  if (!in_transaction_ && !sqlite3_stmt_readonly(prepare(sql))) counted_commit();
  return out;
}

Status migrate_part(StoreTables& tables, const PartTransactions& tx, const std::string& where, std::string_view part,
                    std::span<const StoreTables::Migration> steps) {
  const std::string name(part);
  const auto latest = static_cast<int64_t>(steps.size());
  // Nearly always the tables are up to date: a read says so without the
  // write lock (or the advisory lock). A version that reads older is read
  // again under the lock, which is what decides.
  if (auto seen = tables.query("SELECT version FROM part_versions WHERE part=?1", {name}, "cannot read a schema version");
      seen && !seen->empty() && seen->front().integer(0) == latest)
    return {};
  if (auto s = tx.begin(); !s.ok()) return s;
  int64_t version = 0;
  auto read = tables.query("SELECT version FROM part_versions WHERE part=?1", {name}, "cannot read a schema version");
  Status s = read ? Status{} : read.status();
  if (read && !read->empty()) version = read->front().integer(0);
  if (s.ok() && version > latest)
    s = Error{"state database " + where + ": the tables of " + name + " have schema version " +
              std::to_string(version) + ", newer than this hearth understands (" + std::to_string(latest) +
              "): upgrade hearth"};
  if (!s.ok() || version >= latest) {
    tx.rollback();
    return s;
  }
  // Every step due in this one transaction: whole or not at all, one commit.
  for (; s.ok() && version < latest; ++version) s = steps[static_cast<size_t>(version)](tables);
  if (s.ok())
    s = tables.execute("INSERT INTO part_versions (part, version) VALUES (?1, ?2) "
                       "ON CONFLICT (part) DO UPDATE SET version=excluded.version",
                       {name, latest}, "cannot record a schema version");
  if (!s.ok()) {
    tx.rollback();
    return s;
  }
  return tx.commit();
}

// Every step due in one transaction, the version read inside it (BEGIN
// IMMEDIATE): two processes opening the store at once do not both run one.
Status SqliteStore::migrate(std::string_view part, std::span<const Migration> steps) {
  return migrate_part(*this, {[this] { return begin(); }, [this] { return commit(); }, [this] { rollback(); }}, path_,
                      part, steps);
}

}  // namespace hearth::engine
