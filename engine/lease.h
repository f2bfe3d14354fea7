// Who runs a run: the lease an engine records on a run it runs, renewed by a
// heartbeat, and the test another engine applies before taking the run over.
//
// The owner names the process and where its pid means something: its pid
// namespace and the machine's boot. Two containers that share a hostname
// (or a pid) are told apart, so a live run in one is never taken over by the
// other because a pid looks dead from there; only an owner in the same pid
// namespace of the same boot is checked with kill(pid, 0), which lets a run
// whose engine crashed on this machine be resumed at once. Every other owner
// keeps the run until its heartbeat is kLeaseStaleMs old.
#pragma once

#include <cstdint>
#include <string>

#include "engine/store.h"

namespace hearth::engine {

/// A lease whose heartbeat is older than this belongs to a dead or hung
/// engine and may be taken over.
inline constexpr int64_t kLeaseStaleMs = 30000;

/// This process's owner string, its instance id, the same for every call in
/// one process: "<pid>@<host> pidns=<inode> boot=<boot id> id=<uuid>".
std::string lease_owner();

/// Whether `owner` names a process of this pid namespace and boot that no
/// longer exists: its lease may be taken at once, however fresh.
bool owner_gone(const std::string& owner);

/// Whether a live engine may still be running `run` at wall-clock time `now`
/// (ms): its lease is fresh and its owner, when it is a process this one can
/// see (same pid namespace, same boot), still exists. An owner recorded as
/// "<pid>@<host>" alone (by an older release) is checked by pid on a host of
/// the same name. A run recorded as running without a live lease was
/// interrupted: `hearth resume` continues it.
bool lease_alive(const RunRecord& run, int64_t now, int64_t stale_ms = kLeaseStaleMs);
inline bool lease_alive(const RunRecord& run) { return lease_alive(run, now_ms()); }

}  // namespace hearth::engine
