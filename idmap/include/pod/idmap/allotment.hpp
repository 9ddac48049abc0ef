// Where a caller's leases may come from (the allotment), and which host ids must never
// be handed out (reservations), built from /etc/subuid, /etc/subgid, passwd and group.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "pod/idmap/ranges.hpp"
#include "pod/idmap/subid.hpp"
#include "pod/sys/fd.hpp"

namespace pod::idmap {

// Host ids nobody else may be given, with the reason shown when a map touches them:
// "uid 1000 on the host belongs to user 'alice'".
struct Reservation {
  IdKind kind = IdKind::uid;
  IdRange range;
  std::string why;  // completes "uid N on the host ..."
};

struct Allotment {
  RangeSet uids;  // the pool
  RangeSet gids;
  std::vector<Reservation> reserved;
  // auto aligns leases to this many ids from the start of a pool interval; pick steps
  // by `size` rounded up to it.
  std::uint64_t block = 1;
  std::string source;  // where the pool came from, for messages
};

// What the host says, read once so the policy below is a pure function (and testable).
struct HostIds {
  std::vector<SubidEntry> subuid, subgid;
  std::vector<std::pair<uid_t, std::string>> users;   // passwd: uid, name
  std::vector<std::pair<gid_t, std::string>> groups;  // group: gid, name
};

// Reads /etc/subuid, /etc/subgid (missing files: no entries) and enumerates the passwd
// and group databases (getpwent/getgrent, so NSS sources count too).
[[nodiscard]] HostIds read_host_ids(const Warn& warn);

// Root's pool, in order of preference:
//  1. `config`, the text of LEDGER_DIR/pool.json:
//       {"uids": [{"host": N, "count": N}, ...], "gids": [...], "block": 65536}
//     ("gids" defaults to "uids", "block" to 65536);
//  2. the /etc/subuid and /etc/subgid ranges of the user named `pool_user`
//     ("containers"), when it has both;
//  3. 0x80000-0x6fffffff (as systemd-nspawn's pick), in 65536-id blocks.
// Reserved: every other subuid/subgid owner's ranges, every passwd uid and group gid.
[[nodiscard]] Result<Allotment> root_allotment(const HostIds& host, const std::optional<std::string>& config,
                                               std::string_view pool_user = "containers");

// An ordinary user's pool: their own /etc/subuid and /etc/subgid ranges (by name or
// uid), unaligned. Empty ranges are an error with the fix.
[[nodiscard]] Result<Allotment> user_allotment(const HostIds& host, std::string_view user, uid_t uid);

// The allotment of the calling process: root's (reading LEDGER_DIR/pool.json if
// there is one) or the user's own.
[[nodiscard]] Result<Allotment> caller_allotment(sys::FdRef ledger_dir, const Warn& warn);

// The first id of [r] that the allotment reserves, with the sentence saying why.
[[nodiscard]] std::optional<std::string> reserved_conflict(const Allotment& a, IdKind kind, IdRange r);

}  // namespace pod::idmap
