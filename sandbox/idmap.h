// Private to sandbox/: who a namespace sandbox runs as on the host when the
// engine is root, and the user namespaces that id-map its binds.
//
// As root the child is cloned without a user namespace and builds the root
// with real privileges; then it enters a user namespace prepared here, whose
// only mapping is its user 1000 to an unprivileged host id, and becomes that
// user (no capabilities) before exec. The host ids come from a range: the
// first /etc/subuid and /etc/subgid entries of the user `hearth`, else
// kDefaultIdBase.. (docs/sandbox.md). Each workspace (in practice: each run)
// gets the next id of the range and keeps it while it is remembered, so the
// steps of a run share one id and different runs do not.
//
// A bind (the workspace, the grants directory, --rw/--ro) is mounted
// id-mapped (MOUNT_ATTR_IDMAP): its host owner appears as the sandbox's id
// inside, and what the command creates belongs to that owner on the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "util/status.h"

namespace hearth::sandbox {

/// The range used when /etc/subuid has no entry for `hearth`: above what
/// useradd hands out as subordinate ids (100000-600100000) and above
/// systemd's container range (524288-1879048191).
inline constexpr uint32_t kDefaultIdBase = 0x70000000;  // 1879048192
inline constexpr uint32_t kDefaultIdCount = 65536;

/// Host ids for sandboxes: [uid_base, uid_base + count) and the same for gids.
struct IdRange {
  uint32_t uid_base = kDefaultIdBase;
  uint32_t gid_base = kDefaultIdBase;
  uint32_t count = kDefaultIdCount;
};

/// The first "user:start:count" line of `text` (the contents of
/// /etc/subuid or /etc/subgid) whose user is `user`; nullopt when none.
/// Lines that do not parse are skipped, as shadow-utils does.
std::optional<std::pair<uint32_t, uint32_t>> find_subordinate_ids(const std::string& text, const std::string& user);

/// The range for this host: /etc/subuid and /etc/subgid of `hearth` when
/// both have an entry (the smaller count), else the default.
IdRange sandbox_id_range();

/// True when this process is root of the host: uid 0 in the initial user
/// namespace (not the root of a container's user namespace, which is an
/// unprivileged id of the host already).
bool is_host_root();

/// True when CAP_SYS_ADMIN is in this process's effective set.
bool has_sys_admin();

/// A host uid and gid a sandbox runs as.
struct HostId {
  uid_t uid;
  gid_t gid;
};

/// Hands out sandbox ids and keeps the id-mapping user namespaces. Used on
/// the engine's loop thread only. Owns the namespace descriptors it returns.
class SandboxIds {
 public:
  explicit SandboxIds(IdRange range);
  ~SandboxIds();
  SandboxIds(const SandboxIds&) = delete;
  SandboxIds& operator=(const SandboxIds&) = delete;

  /// The id of sandboxes of `workspace` (a host path; empty: a tmpfs): the
  /// same while it is remembered (up to kRemembered workspaces), else the
  /// next of the range. Called once per sandbox, first: it may close
  /// namespaces mapping() returned before.
  HostId for_workspace(const std::string& workspace);

  /// A user namespace whose map sends `owner` to `id` and nothing else:
  /// MOUNT_ATTR_IDMAP with it shows files of `owner` as `id`'s. The
  /// descriptor stays valid until the next for_workspace() or until this
  /// object goes. Errors say what failed.
  Result<int> mapping(HostId owner, HostId id);

 private:
  static constexpr size_t kRemembered = 256;
  static constexpr size_t kNamespaces = 64;
  IdRange range_;
  uint32_t next_;
  std::map<std::string, HostId> by_workspace_;
  std::map<std::tuple<uid_t, gid_t, uid_t, gid_t>, int> namespaces_;
};

/// A new user namespace with these maps ("inside outside count" lines),
/// as an open descriptor of /proc/<pid>/ns/user. Needs CAP_SETUID and
/// CAP_SETGID (root). Costs one short-lived process that shares the
/// caller's memory.
Result<int> make_mapping_namespace(const std::string& uid_map, const std::string& gid_map);

/// An unprivileged engine's own user namespace (docs/sandbox.md, "Run by an
/// ordinary user"): the engine's uid and gid mapped to themselves and
/// nothing else, setgroups denied. Held by the descriptor returned (nothing
/// runs in it; costs one short-lived process sharing the caller's memory);
/// the engine, as its owner, has every capability in it, so
/// a child can enter it and build a sandbox's root there, then unshare the
/// sandbox's own user namespace inside it.
Result<int> make_held_user_namespace();

}  // namespace hearth::sandbox
