// The PostgreSQL store's StoreTables: the tables of parts outside the
// engine, versioned in part_versions, written in the store's transactions.
// A part's statements use ?1..?N (or ?) as on SQLite; they are spelt $1..$N
// here once, and the spelling cached by the text's address like the
// statement itself.
#include "engine/part_migrations.h"
#include "engine/pg_sql.h"

namespace hearth::engine {

namespace {

// `sql` with ?N as $N and a bare ? as the next $k. A ? inside a quoted
// literal or identifier is left alone.
std::string dollar_params(const char* sql) {
  std::string out;
  int next = 0;
  char quote = 0;
  for (const char* p = sql; *p; ++p) {
    if (quote) {
      if (*p == quote) quote = 0;
      out += *p;
    } else if (*p == '\'' || *p == '"') {
      quote = *p;
      out += *p;
    } else if (*p == '?') {
      std::string digits;
      while (p[1] >= '0' && p[1] <= '9') digits += *++p;
      out += "$" + (digits.empty() ? std::to_string(++next) : digits);
    } else {
      out += *p;
    }
  }
  return out;
}

SqlRow read_row(const PGresult* r, int i) {
  SqlRow row;
  int n = PQnfields(r);
  row.columns.reserve(static_cast<size_t>(n));
  for (int c = 0; c < n; ++c) {
    Oid type = PQftype(r, c);
    if (PQgetisnull(r, i, c)) row.columns.emplace_back(std::monostate{});
    else if (type == 20 || type == 21 || type == 23)  // int8, int2, int4
      row.columns.emplace_back(pg::cell_int(r, i, c));
    else
      row.columns.emplace_back(pg::cell(r, i, c));
  }
  return row;
}

}  // namespace

// A write after a failure is refused with it, as every write of the store.
// In a transaction it is held back, as the store's own writes are.
Status PgStore::execute(const char* sql, std::initializer_list<SqlParam> params, const char* what) {
  settle();
  if (!sticky_.ok()) return sticky_;
  if (in_transaction_) return defer(spelt(sql), pg::params(params), what);
  auto r = query(sql, params, what);
  return r ? Status{} : r.status();
}

const char* PgStore::spelt(const char* sql) {
  for (auto& [key, text] : translated_)
    if (key == sql) return text.c_str();
  return translated_.emplace_back(sql, dollar_params(sql)).second.c_str();
}

Result<std::vector<SqlRow>> PgStore::query(const char* sql, std::initializer_list<SqlParam> params, const char* what) {
  std::vector<SqlRow> out;
  auto r = run(spelt(sql), pg::params(params), what);
  if (!r) return r.error();
  for (int i = 0, n = PQntuples(r->get()); i < n; ++i) out.push_back(read_row(r->get(), i));
  // A statement outside a transaction is a commit of its own (a read costs
  // nothing to count: when_durable calls back at once either way).
  if (!in_transaction_) ++commits_;
  return out;
}

// One step per transaction, under the advisory lock the engine's schema
// takes too, the version read after taking it.
Status PgStore::migrate(std::string_view part, std::span<const Migration> steps) {
  return migrate_part(*this, {[this] { return begin_locked(); }, [this] { return commit(); }, [this] { rollback(); }},
                      shown_, part, steps);
}

}  // namespace hearth::engine
