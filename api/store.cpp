// inspect_store and migrate_store (store.h) over the engine's store, its
// inspection and copy (engine/store_inspect.h, engine/store_migrate.h), and
// the parts that keep tables in it: the compiled workflows and the delivery
// queue, whose tables are made on both sides before the copy.
#include "hearth/store.h"

#include <filesystem>

#include "ci/delivery_queue.h"
#include "engine/checkout_records.h"
#include "engine/compiled_workflows.h"
#include "engine/pg_store.h"
#include "engine/store.h"
#include "engine/store_inspect.h"
#include "engine/store_migrate.h"

namespace hearth {

namespace {

namespace fs = std::filesystem;

std::string shown(const std::string& location) {
  return engine::is_postgres_location(location) ? engine::redact_url(location) : location;
}

// A location that is a URL of another kind would otherwise be taken for a
// file path, and made into directories. Its text is not repeated: it may
// hold a password.
Status known_kind(const std::string& location, const char* which) {
  if (location.find("://") == std::string::npos || engine::is_postgres_location(location)) return {};
  return Error{std::string(which) +
               " is a URL, but not a postgres:// or postgresql:// one (a SQLite store is named by its path)"};
}

// Opens the store at `location` at this hearth's schema, with the tables of
// every part made. A PostgreSQL store's engine files are never written here:
// its local directory is the system's temporary one.
Result<std::unique_ptr<engine::Store>> open_whole(const std::string& location) {
  std::error_code ec;
  auto store = engine::Store::open(location, nullptr,
                                   engine::is_postgres_location(location) ? fs::temp_directory_path(ec).string() : "");
  if (!store) return store.error();
  engine::CompiledWorkflows compiled(**store);  // makes its table
  if (auto s = engine::prepare_checkout_records(**store); !s.ok()) return Error{s.message()};
  auto queue = ci::DeliveryQueue::open(**store);
  if (!queue) return queue.error();
  return store;
}

}  // namespace

Result<StoreInfo> inspect_store(const std::string& location) {
  if (auto s = known_kind(location, "the store to check"); !s.ok()) return s.error();
  auto v = engine::inspect_store(location);
  if (!v) return v.error();
  return StoreInfo{v->backend, v->shown, v->found, v->current, v->parts, v->runs};
}

Result<StoreMigration> migrate_store(const std::string& from, const std::string& to) {
  if (auto s = known_kind(from, "the store to migrate from"); !s.ok()) return s.error();
  if (auto s = known_kind(to, "the store to migrate to"); !s.ok()) return s.error();
  const bool from_pg = engine::is_postgres_location(from), to_pg = engine::is_postgres_location(to);
  std::error_code ec;
  if (!from_pg && !fs::is_regular_file(from, ec))
    return Error{"no state database at " + from + " to migrate from (--from names a SQLite file or a postgres:// URL)"};
  bool same = from_pg == to_pg && (from_pg ? from == to : fs::exists(to, ec) && fs::equivalent(from, to, ec));
  if (same) return Error{"--from and --to name the same store, " + shown(from)};
  engine::SqlTexts texts;  // outlives both stores (store_migrate.h)
  auto source = open_whole(from);
  if (!source) return Error{"the store to migrate from: " + source.message()};
  auto target = open_whole(to);
  if (!target) return Error{"the store to migrate to: " + target.message()};
  auto copied = engine::copy_history(**source, **target, texts);
  if (!copied) return copied.error();
  StoreMigration out{(*source)->path(), (*target)->path(), {}};
  for (auto& t : *copied) out.rows.emplace_back(t.table, t.rows);
  return out;
}

}  // namespace hearth
