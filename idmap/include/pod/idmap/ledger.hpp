// The range ledger: leases of host id ranges, one JSON file per store
// (LEDGER_DIR/leases.json, LEDGER_DIR = STORE/idmap, so /var/lib/pod/idmap for root),
// changed only read-modify-write under an exclusive flock of LEDGER_DIR/leases.lock and
// replaced atomically. A lease never shares a host id with another lease (leased or
// quarantined) or with the allotment's reservations; every id is checked.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/idmap/allotment.hpp"
#include "pod/idmap/ranges.hpp"
#include "pod/idmap/userns.hpp"
#include "pod/sys/fd.hpp"

namespace pod::idmap {

// The kernel's limit on the lines of a uid_map or gid_map (since Linux 4.15).
inline constexpr std::size_t kMaxExtents = 340;

enum class LeaseState { leased, quarantined };
[[nodiscard]] const char* state_name(LeaseState s);

struct Lease {
  std::string name;
  std::optional<std::string> pod;  // the pod's uuid, when a pod holds it
  IdMap uids;                      // inner ids as the pod sees them, outer on the host
  IdMap gids;
  std::string created;  // RFC 3339, UTC
  LeaseState state = LeaseState::leased;
};

// How a lease is chosen. auto and pick fit uids and gids separately, each in its own
// pool; they come out equal unless something reserves ids of one kind only.
struct Policy {
  enum class Kind { automatic, pick, map };
  Kind kind = Kind::automatic;
  std::uint64_t size = 65536;  // automatic, pick: ids of each kind, mapped from 0
  MapSpec map;                 // map: exactly these extents
  // automatic: when not empty, the inner ids to map instead of [0, size): one extent per
  // interval, laid side by side on one free host range (--userns auto over an image's
  // census). At most kMaxExtents intervals.
  RangeSet cover_uids, cover_gids;

  // "auto", "auto:size=N", "pick", or a MAP (see parse_map_spec). `size` (from
  // --size) applies to auto and pick unless "auto:size=N" says otherwise.
  [[nodiscard]] static Result<Policy> parse(std::string_view text, std::optional<std::uint64_t> size);
};

struct AllocRequest {
  std::string name;
  std::optional<std::string> pod;
  Policy policy;
};

// [a-z0-9][a-z0-9-]{0,62}, as pod names.
[[nodiscard]] Result<void> check_lease_name(std::string_view name);

// The lease `req` gets, given the leases already in the ledger; refused with the first
// offending id and why ("uid 0 on the host is not in your allotment (100000-165535)").
// Pure: the caller writes it. `created` is left empty.
[[nodiscard]] Result<Lease> choose_lease(const std::vector<Lease>& others, const Allotment& a,
                                         const AllocRequest& req);

// A path below the store whose owner is one of the lease's host ids, or nullopt.
using InUse = std::function<Result<std::optional<std::string>>(const Lease&)>;

// Whether the entry `name` of STORE/shifted can be left out of the walk: a tree shifted
// for exactly the lease's map (the cache's, reused by the next pod with that map, not a
// leftover of the lease), or one known to hold none of the lease's ids.
using CachedForLease = std::function<bool(sys::FdRef shifted, const std::string& name, const Lease&)>;

// Looks in STORE/pods and STORE/shifted (those that exist) with the census walk,
// leaving out the shifted trees `cached` names. A directory that cannot be read counts
// as in use: a range is freed only when it is known to be unused.
[[nodiscard]] InUse store_files_in_use(sys::FdRef store, CachedForLease cached = {});

// Opens STORE/idmap, making STORE (0700) and it as needed.
[[nodiscard]] Result<sys::Fd> open_ledger_dir(std::string_view store_path);

// The leases as they are (shared lock).
[[nodiscard]] Result<std::vector<Lease>> read_leases(sys::FdRef ledger_dir);

// Re-checks quarantined leases, removes those whose ids no file uses any more, and
// returns the rest. `pod idmap list` calls this, so listing frees ranges.
[[nodiscard]] Result<std::vector<Lease>> refresh_leases(sys::FdRef ledger_dir, const InUse& in_use);

// Chooses and records a lease; an existing name is EEXIST.
[[nodiscard]] Result<Lease> allocate(sys::FdRef ledger_dir, const Allotment& a, const AllocRequest& req);

// Removes the lease, or quarantines it while files in its range remain (`path` names
// one). Releasing a quarantined lease re-checks it.
struct Released {
  bool quarantined = false;
  std::string path;
};
[[nodiscard]] Result<Released> release(sys::FdRef ledger_dir, std::string_view name, const InUse& in_use);

// The ledger file's text form (exposed for tests and for a damaged-file message).
[[nodiscard]] std::string leases_to_text(const std::vector<Lease>& leases);
[[nodiscard]] Result<std::vector<Lease>> leases_from_text(std::string_view text);

}  // namespace pod::idmap
