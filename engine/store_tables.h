// The store's door for a part outside the engine that keeps tables of its
// own in the same database (the delivery queue of `hearth serve`): the part
// owns its tables, their schema and its statements; the store gives it a
// schema version of its own, its transactions and its durability. The
// engine knows nothing of those tables.
//
// Statements are the part's own SQL in the store's dialect(). Parameters are
// ?1..?N on every backend (PostgreSQL's store spells them $1..$N itself).
// Everything runs on the store's thread, like the store.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/status.h"

namespace hearth::engine {

/// A value bound to a parameter: NULL, an integer, or text. Text is not
/// copied: it must live until the call returns.
using SqlParam = std::variant<std::monostate, int64_t, std::string_view>;

/// One row of a query's result, its columns in the order the query names
/// them: NULL, an integer, or text (the bytes of a TEXT or BLOB column).
struct SqlRow {
  std::vector<std::variant<std::monostate, int64_t, std::string>> columns;
  /// Column `i` as text; empty when it is NULL or an integer.
  const std::string& text(size_t i) const;
  /// Column `i` as an integer; 0 when it is NULL or text.
  int64_t integer(size_t i) const;
  /// Column `i` as text, moved out of the row (for large values).
  std::string take_text(size_t i);
};

class StoreTables {
 public:
  /// One step of a part's schema, from version `index` to `index + 1`. It
  /// runs inside a transaction the store opened and commits with the new
  /// version: it uses execute() and query(), never begin() or commit().
  using Migration = Status (*)(StoreTables& tables);

  /// The SQL dialect of the statements given here: "sqlite" or "postgres".
  virtual std::string_view dialect() const = 0;
  /// Brings `part`'s tables to version `steps.size()`, one step per
  /// transaction; the version is kept by the store, apart from the engine's.
  /// A part recorded at a newer version than `steps` knows is refused (an
  /// older hearth on a newer database). Two processes migrating at once: one
  /// waits for the other, then sees the version it wrote.
  virtual Status migrate(std::string_view part, std::span<const Migration> steps) = 0;
  /// Runs one statement. Inside the store's begin()/commit() it joins that
  /// transaction; outside, it is a commit of its own, which when_durable()
  /// covers. A failure is the store's sticky failure. `sql` is cached by its
  /// address: pass a string literal (or text that lives as long as the
  /// store). `what` names the action in the error ("cannot record the
  /// delivery").
  virtual Status execute(const char* sql, std::initializer_list<SqlParam> params, const char* what) = 0;
  /// Runs one statement and returns its rows (a write with RETURNING is
  /// counted as execute() counts it). `sql` and `what` as for execute().
  virtual Result<std::vector<SqlRow>> query(const char* sql, std::initializer_list<SqlParam> params,
                                            const char* what) = 0;

 protected:
  ~StoreTables() = default;
};

}  // namespace hearth::engine
