// Private to the store backends: StoreTables::migrate, written once over
// the backend's own transaction calls and its StoreTables statements.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "engine/store_tables.h"

namespace hearth::engine {

/// How a backend opens, ends and abandons the transaction each step runs
/// in. `begin` must serialise with every other process migrating the same
/// database (BEGIN IMMEDIATE, an advisory lock), so the version it reads
/// next is the one to migrate from.
struct PartTransactions {
  std::function<Status()> begin, commit;
  std::function<void()> rollback;
};

/// Brings `part`'s tables to version `steps.size()`, every step due in one
/// transaction, the version kept in part_versions; a newer version is
/// refused. `where` names the database in errors.
Status migrate_part(StoreTables& tables, const PartTransactions& tx, const std::string& where, std::string_view part,
                    std::span<const StoreTables::Migration> steps);

}  // namespace hearth::engine
