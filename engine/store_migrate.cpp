// copy_history (store_migrate.h): the engine's tables run by run through the
// Store interface, then every part's table row by row through StoreTables,
// then the rows of each table counted on both sides.
#include "engine/store_migrate.h"

#include <algorithm>
#include <array>
#include <climits>
#include <map>
#include <set>
#include <utility>

#include "engine/store_tables.h"

namespace hearth::engine {

namespace {

// The engine's own tables, which the Store interface reads and writes.
constexpr const char* kEngineTables[] = {"runs",          "steps",             "attempts",      "events",
                                         "command_calls", "agent_checkpoints", "agent_messages"};
// Bookkeeping each store keeps for itself: never copied.
bool bookkeeping(const std::string& table) {
  return table == "part_versions" || table == "schema_version" || table == "commit_marks" ||
         table.rfind("sqlite_", 0) == 0;
}
bool engine_table(const std::string& table) {
  return std::find(std::begin(kEngineTables), std::end(kEngineTables), table) != std::end(kEngineTables);
}
// Tables of one backend's layout whose rows the Store interface reads with
// another's: SQLite keeps an attempt's output tail apart from its attempt.
bool layout_table(const std::string& table) { return table == "attempt_tails"; }

// A text made here, kept where the stores can cache it by address.
const char* keep(SqlTexts& texts, std::string sql) { return texts.emplace_back(std::move(sql)).c_str(); }

std::string ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// How many rows of the engine's `table` a store holds, as the Store interface
// sees them: SQLite keeps a step's last attempt in the step's own row and
// only earlier ones in attempts (schema 10).
const char* engine_count(StoreTables& t, SqlTexts& texts, const std::string& table) {
  if (table == "attempts" && t.dialect() != "postgres")
    return "SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM steps WHERE attempt > 0)";
  return keep(texts, "SELECT count(*) FROM " + ident(table));
}

// StoreTables takes its parameters as an initializer_list: a table of
// calls, one per count of columns, turns a row of any width into one.
constexpr size_t kMaxColumns = 64;
using Execute = Status (*)(StoreTables&, const char*, const std::vector<SqlParam>&, const char*);
template <size_t... I>
Status execute_row(StoreTables& t, const char* sql, const std::vector<SqlParam>& p, const char* what,
                   std::index_sequence<I...>) {
  return t.execute(sql, {p[I]...}, what);
}
template <size_t N>
Status execute_width(StoreTables& t, const char* sql, const std::vector<SqlParam>& p, const char* what) {
  return execute_row(t, sql, p, what, std::make_index_sequence<N>{});
}
template <size_t... N>
constexpr std::array<Execute, sizeof...(N)> executes(std::index_sequence<N...>) {
  return {&execute_width<N>...};
}
constexpr auto kExecutes = executes(std::make_index_sequence<kMaxColumns + 1>{});

SqlParam param_of(const std::variant<std::monostate, int64_t, std::string>& v) {
  if (auto* n = std::get_if<int64_t>(&v)) return *n;
  if (auto* s = std::get_if<std::string>(&v)) return std::string_view(*s);
  return std::monostate{};
}

struct Column {
  std::string name;
  bool generated = false;  // an identity column: the target numbers it itself
};

// The store's tables, by its catalog.
Result<std::set<std::string>> tables_of(StoreTables& t) {
  const char* sql = t.dialect() == "postgres"
                        ? "SELECT table_name::text FROM information_schema.tables "
                          "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                        : "SELECT name FROM sqlite_master WHERE type = 'table'";
  auto rows = t.query(sql, {}, "cannot list the tables");
  if (!rows) return rows.error();
  std::set<std::string> out;
  for (auto& r : *rows) out.insert(r.take_text(0));
  return out;
}

Result<std::vector<Column>> columns_of(StoreTables& t, const std::string& table) {
  bool pg = t.dialect() == "postgres";
  const char* sql = pg ? "SELECT column_name::text, is_identity::text FROM information_schema.columns "
                         "WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position"
                       : "SELECT name, 'NO' FROM pragma_table_info(?1) ORDER BY cid";
  auto rows = t.query(sql, {table}, "cannot read the columns of a table");
  if (!rows) return rows.error();
  std::vector<Column> out;
  for (auto& r : *rows) out.push_back({r.take_text(0), r.text(1) == "YES"});
  return out;
}

// The order rows were added in, where the store keeps it: SQLite's rowid,
// PostgreSQL's identity column. Empty when there is none.
Result<std::string> insertion_order(StoreTables& t, const std::string& table, const std::vector<Column>& columns) {
  if (t.dialect() == "postgres") {
    for (auto& c : columns)
      if (c.generated) return ident(c.name);
    return std::string();
  }
  auto rows = t.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", {table},
                      "cannot read a table's definition");
  if (!rows) return rows.error();
  bool without_rowid = !rows->empty() && rows->front().text(0).find("WITHOUT ROWID") != std::string::npos;
  return without_rowid ? std::string() : std::string("rowid");
}

Result<int64_t> count_of(StoreTables& t, const char* sql) {
  auto rows = t.query(sql, {}, "cannot count rows");
  if (!rows) return rows.error();
  return rows->empty() ? 0 : rows->front().integer(0);
}

Result<int64_t> count_rows(StoreTables& t, SqlTexts& texts, const std::string& table) {
  return count_of(t, keep(texts, "SELECT count(*) FROM " + ident(table)));
}

Result<std::map<std::string, int64_t>> part_versions(StoreTables& t) {
  auto rows = t.query("SELECT part, version FROM part_versions", {}, "cannot read the parts' schema versions");
  if (!rows) return rows.error();
  std::map<std::string, int64_t> out;
  for (auto& r : *rows) out[r.take_text(0)] = r.integer(1);
  return out;
}

class Copy {
 public:
  Copy(Store& from, Store& to, SqlTexts& texts) : from_(from), to_(to), texts_(texts) {}

  Result<std::vector<TableRows>> run() {
    if (auto s = plan(); !s.ok()) return s.error();
    // The source's transaction first: one snapshot of it serves every read.
    // On PostgreSQL the level is the session's (the store's BEGIN already
    // runs a query, after which a transaction's level can no longer be set);
    // this connection serves the copy only.
    if (from_.tables().dialect() == "postgres") {
      if (auto s = from_.tables().execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                                          {}, "cannot take a consistent snapshot");
          !s.ok())
        return s.error();
    }
    if (auto s = from_.begin(); !s.ok()) return s.error();
    // A reconnection mid-copy would carry the transaction over to a new
    // session without that level, reading a second snapshot: the copy
    // then fails as a whole rather than mix two states of the source.
    const int64_t source_reconnects = from_.reconnects();
    if (auto s = to_.begin(); !s.ok()) return abandon(s);
    if (auto s = claim_empty_target(); !s.ok()) return abandon(s);
    auto counted = copy_all();
    if (!counted) return abandon(counted.status());
    if (from_.reconnects() != source_reconnects)
      return abandon(Error{"the connection to " + from_.path() +
                           " was lost during the copy, so its rows may come from two moments: nothing was copied; "
                           "run the migration again"});
    from_.rollback();  // read only
    if (auto s = to_.commit(); !s.ok()) return s.error();
    return counted;
  }

 private:
  // What is in each store, and whether the copy can go ahead.
  Status plan() {
    auto mine = tables_of(from_.tables()), theirs = tables_of(to_.tables());
    if (!mine) return mine.status();
    if (!theirs) return theirs.status();
    for (auto& t : *mine) {
      if (bookkeeping(t) || engine_table(t) || layout_table(t)) continue;
      if (!theirs->count(t))
        return Error{from_.path() + " holds the table '" + t + "', which this hearth does not make in " + to_.path() +
                     " (a newer hearth's, or another program's): nothing was copied"};
      parts_.push_back(t);
    }
    auto from_parts = part_versions(from_.tables()), to_parts = part_versions(to_.tables());
    if (!from_parts) return from_parts.status();
    if (!to_parts) return to_parts.status();
    for (auto& [part, version] : *from_parts) {
      auto it = to_parts->find(part);
      int64_t there = it == to_parts->end() ? 0 : it->second;
      if (there != version)
        return Error{"the tables of " + part + " are at version " + std::to_string(version) + " in " + from_.path() +
                     " but " + std::to_string(there) + " in " + to_.path() + ": nothing was copied"};
    }
    return {};
  }

  // Inside the target's transaction: nothing else may add runs until it
  // ends (SQLite's write lock is held already; PostgreSQL's table lock lets
  // others read), and the target must hold no run and no part's row.
  Status claim_empty_target() {
    if (to_.tables().dialect() == "postgres") {
      if (auto s = to_.tables().execute("LOCK TABLE runs IN EXCLUSIVE MODE", {}, "cannot lock the runs table");
          !s.ok())
        return s;
    }
    std::vector<std::string> all{"runs"};
    all.insert(all.end(), parts_.begin(), parts_.end());
    for (auto& t : all) {
      auto rows = count_rows(to_.tables(), texts_, t);
      if (!rows) return rows.status();
      if (*rows > 0)
        return Error{to_.path() + " already holds " + std::to_string(*rows) + (t == "runs" ? " runs" : " rows in " + t) +
                     ": a history is migrated into an empty store only (nothing was copied)"};
    }
    return {};
  }

  Result<std::vector<TableRows>> abandon(const Status& why) {
    to_.rollback();
    from_.rollback();
    return why.error();
  }

  Result<std::vector<TableRows>> copy_all() {
    auto runs = from_.list_runs(INT_MAX, "");
    if (!runs) return runs.error();
    std::reverse(runs->begin(), runs->end());  // oldest first: the target keeps the order they came in
    for (auto& run : *runs)
      if (auto s = copy_run(run); !s.ok()) return s.error();
    for (auto& t : parts_)
      if (auto s = copy_table(t); !s.ok()) return s.error();
    return verify();
  }

  Status copy_run(RunRecord run) {
    run.lease_owner.clear();  // the engine that held it writes to the old store, never to this one
    run.lease_heartbeat = 0;
    if (auto s = to_.insert_run(run); !s.ok()) return s;
    auto steps = from_.load_steps(run.id);
    if (!steps) return steps.status();
    for (auto& step : *steps) {
      if (auto s = to_.insert_step(run.id, step); !s.ok()) return s;
      if (auto s = to_.update_step(run.id, step); !s.ok()) return s;
      for (auto& a : step.attempt_list) {
        if (auto s = to_.insert_attempt(run.id, a); !s.ok()) return s;
        if (auto s = to_.finish_attempt(run.id, a); !s.ok()) return s;
      }
    }
    auto events = from_.load_events(run.id, 0);
    if (!events) return events.status();
    for (auto& e : *events)
      if (auto s = to_.insert_event(e); !s.ok()) return s;
    auto calls = from_.load_calls(run.id);
    if (!calls) return calls.status();
    for (auto& c : *calls) {
      if (auto s = to_.insert_call(run.id, c.step_id, c.attempt, c); !s.ok()) return s;
      if (auto s = to_.finish_call(run.id, c.step_id, c.attempt, c); !s.ok()) return s;
    }
    auto checkpoints = from_.load_checkpoints(run.id);
    if (!checkpoints) return checkpoints.status();
    for (auto& c : *checkpoints) {
      if (auto s = to_.save_checkpoint(run.id, c.step_id, c.attempt, c.turns, c.state); !s.ok()) return s;
      // save_checkpoint stamps the time of this save: keep the original's.
      if (auto s = to_.tables().execute(
              "UPDATE agent_checkpoints SET saved_at = ?1 WHERE run_id = ?2 AND step_id = ?3 AND attempt = ?4",
              {c.saved_at, run.id, c.step_id, int64_t{c.attempt}}, "cannot record when a checkpoint was saved");
          !s.ok())
        return s;
    }
    return {};
  }

  // A part's table, the columns both sides have (an identity column of the
  // target numbers itself), in the order the source added its rows.
  Status copy_table(const std::string& table) {
    auto source = columns_of(from_.tables(), table), target = columns_of(to_.tables(), table);
    if (!source) return source.status();
    if (!target) return target.status();
    std::vector<std::string> names;
    for (auto& c : *target) {
      if (c.generated) continue;
      bool there = std::any_of(source->begin(), source->end(), [&](const Column& s) { return s.name == c.name; });
      if (there) names.push_back(c.name);
    }
    if (names.empty()) return {};
    if (names.size() > kMaxColumns)
      return Error{"the table " + table + " has " + std::to_string(names.size()) + " columns, more than " +
                   std::to_string(kMaxColumns) + " this copy handles"};
    auto order = insertion_order(from_.tables(), table, *source);
    if (!order) return order.status();
    std::string list, slots;
    for (size_t i = 0; i < names.size(); ++i) {
      list += (i ? ", " : "") + ident(names[i]);
      slots += (i ? ", ?" : "?") + std::to_string(i + 1);
    }
    const char* insert = keep(texts_, "INSERT INTO " + ident(table) + " (" + list + ") VALUES (" + slots + ")");
    std::string select = "SELECT " + list + " FROM " + ident(table);
    if (order->empty()) {
      auto copied = copy_rows(keep(texts_, select), insert, names.size());
      return copied ? Status{} : copied.status();
    }
    // In pages, so that a queue of large payloads is never all in memory.
    const char* page = keep(texts_, select + " ORDER BY " + *order + " LIMIT ?1 OFFSET ?2");
    for (int64_t offset = 0;; offset += kPage) {
      auto copied = copy_rows(page, insert, names.size(), offset);
      if (!copied) return copied.status();
      if (*copied < kPage) return {};
    }
  }

  static constexpr int64_t kPage = 256;

  // Rows of `select` (a page of them from `offset` when it takes ?1 ?2)
  // inserted with `insert`; how many.
  Result<int64_t> copy_rows(const char* select, const char* insert, size_t width, int64_t offset = -1) {
    auto rows = offset < 0 ? from_.tables().query(select, {}, "cannot read a table to copy")
                           : from_.tables().query(select, {kPage, offset}, "cannot read a table to copy");
    if (!rows) return rows.error();
    std::vector<SqlParam> params(width);
    for (auto& row : *rows) {
      for (size_t i = 0; i < width; ++i) params[i] = param_of(row.columns.at(i));
      if (auto s = kExecutes[width](to_.tables(), insert, params, "cannot copy a row"); !s.ok()) return s.error();
    }
    return static_cast<int64_t>(rows->size());
  }

  // Every copied table holds as many rows on both sides.
  Result<std::vector<TableRows>> verify() {
    std::vector<TableRows> out;
    std::vector<std::string> all(std::begin(kEngineTables), std::end(kEngineTables));
    all.insert(all.end(), parts_.begin(), parts_.end());
    for (auto& t : all) {
      auto mine = count_of(from_.tables(), engine_count(from_.tables(), texts_, t));
      auto theirs = count_of(to_.tables(), engine_count(to_.tables(), texts_, t));
      if (!mine) return mine.error();
      if (!theirs) return theirs.error();
      if (*mine != *theirs)
        return Error{"the copy of " + t + " holds " + std::to_string(*theirs) + " rows but " + from_.path() + " has " +
                     std::to_string(*mine) + " (rows that belong to no run are not copied): nothing was committed"};
      out.push_back({t, *theirs});
    }
    return out;
  }

  Store& from_;
  Store& to_;
  SqlTexts& texts_;
  std::vector<std::string> parts_;  // the parts' tables to copy, by name
};

}  // namespace

Result<std::vector<TableRows>> copy_history(Store& from, Store& to, SqlTexts& texts) {
  return Copy(from, to, texts).run();
}

}  // namespace hearth::engine
