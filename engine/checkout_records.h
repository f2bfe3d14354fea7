// The commit each run's `checkout` workspace was made at (private to
// engine/), kept in the store (table run_checkouts, a part of its own with
// portable SQL): a run taken over where its workspace is not (another
// machine sharing a PostgreSQL store) checks out the same commit again,
// not wherever the workflow's ref points by then.
#pragma once

#include <optional>
#include <string>

#include "engine/store.h"

namespace hearth::engine {

/// Brings the table to this build's version. Outside a transaction (its
/// version is read and written in one of its own).
Status prepare_checkout_records(Store& store);
/// The commit recorded for `run_id`; nullopt when none is.
Result<std::optional<std::string>> recorded_checkout(Store& store, const std::string& run_id);
/// Records it, in the caller's transaction; a commit already recorded stays.
Status record_checkout(Store& store, const std::string& run_id, const std::string& commit);

}  // namespace hearth::engine
