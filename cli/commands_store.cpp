// `hearth store check` and `hearth store migrate`: the store as a whole
// (hearth/store.h). What a program reads goes to stdout; errors to stderr.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "hearth/store.h"

namespace hearth::cli {

namespace {

const char* migration_word(StoreInfo::Migration m) {
  switch (m) {
    case StoreInfo::Migration::none: return "none";
    case StoreInfo::Migration::upgrade: return "upgrade";
    case StoreInfo::Migration::refused: return "refused";
  }
  return "none";
}

std::string migration_text(const StoreInfo& s) {
  switch (s.migration()) {
    case StoreInfo::Migration::none: return "nothing to do";
    case StoreInfo::Migration::upgrade:
      return "upgrade from version " + std::to_string(s.schema_found) + (s.schema_found == 0 ? " (empty)" : "") +
             " to " + std::to_string(s.schema_current) + " when this hearth first opens it";
    case StoreInfo::Migration::refused:
      return "refused: version " + std::to_string(s.schema_found) + " is newer than this hearth's (" +
             std::to_string(s.schema_current) + "); upgrade hearth";
  }
  return "";
}

}  // namespace

int command_store_check(const Globals& g, const StoreArgs& args) {
  std::string location = args.location.empty() ? resolve_state(g, resolve_repo(g)) : args.location;
  auto info = inspect_store(location);
  if (!info) {
    std::cerr << "hearth store check: " << info.message() << "\n";
    return kExitRunFailed;
  }
  if (args.json) {
    nlohmann::json parts = nlohmann::json::object();
    for (auto& [name, version] : info->parts) parts[name] = version;
    std::cout << nlohmann::json{{"backend", info->backend},
                                {"location", info->location},
                                {"schema_found", info->schema_found},
                                {"schema_current", info->schema_current},
                                {"migration", migration_word(info->migration())},
                                {"parts", parts},
                                {"runs", info->runs}}
                     .dump(2)
              << "\n";
  } else {
    std::string parts;
    for (auto& [name, version] : info->parts) parts += (parts.empty() ? "" : ", ") + name + " " + std::to_string(version);
    std::cout << std::left << std::setw(11) << "store" << info->backend << " " << info->location << "\n"
              << std::setw(11) << "schema" << "version " << info->schema_found << " found, this hearth writes "
              << info->schema_current << "\n"
              << std::setw(11) << "parts" << (parts.empty() ? "none" : parts) << "\n"
              << std::setw(11) << "runs" << info->runs << "\n"
              << std::setw(11) << "migration" << migration_text(*info) << "\n";
  }
  switch (info->migration()) {
    case StoreInfo::Migration::none: return kExitOk;
    case StoreInfo::Migration::upgrade: return kExitStoreUpgrade;
    case StoreInfo::Migration::refused: return kExitStoreNewer;
  }
  return kExitOk;
}

int command_store_migrate(const StoreArgs& args) {
  auto done = migrate_store(args.from, args.to);
  if (!done) {
    std::cerr << "hearth store migrate: " << done.message() << "\n";
    return kExitRunFailed;
  }
  if (args.json) {
    nlohmann::json rows = nlohmann::json::object();
    for (auto& [table, n] : done->rows) rows[table] = n;
    std::cout << nlohmann::json{{"from", done->from}, {"to", done->to}, {"rows", rows}}.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "migrated " << done->from << " to " << done->to << " (rows counted on both sides)\n";
  for (auto& [table, n] : done->rows) std::cout << "  " << std::left << std::setw(20) << table << n << "\n";
  return kExitOk;
}

}  // namespace hearth::cli
