// `pod run --userns`: the pod's id maps, the lease that backs them, and how they look
// from where `pod` works (the host for root, the store's user namespace for users).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pod/idmap/ledger.hpp"
#include "pod/idmap/ranges.hpp"
#include "pod/sys/error.hpp"

namespace pod::cmd {

struct PodMaps {
  std::string policy;          // keep, auto, pick, host, map
  idmap::MapSpec host;         // pod id -> host id
  idmap::MapSpec view;         // pod id -> id as `pod` sees it (after entering the store namespace)
  bool new_userns = true;      // false: the pod stays in the caller's user namespace
  std::optional<idmap::Lease> lease;  // allocated (or, for --plan, only chosen)
  bool rootless = false;
};

// Host root calls: no store namespace, leases from root's pool.
[[nodiscard]] bool caller_is_root();

// The map that sends each inner id of `m` to itself: ids as they are, over m's ranges.
[[nodiscard]] idmap::IdMap inner_identity(const idmap::IdMap& m);

// The ids the pod's images own files by (the census of their layers).
struct ImageIds {
  idmap::RangeSet uids, gids;
};

// Decides the maps for `policy` ("" means the default: keep for users, auto for root).
// Reads /etc/subuid and the ledger of `store_path`; allocates a lease named after the
// pod unless `dry_run` (then the lease is chosen but not written). Must run before the
// store's user namespace is entered: it needs the host's view of the caller.
// With `image_ids` and a plain `auto` (no size given), ids the images use beyond
// [0, 65536) get extents of their own in the lease, so such an image runs as it is.
[[nodiscard]] sys::Result<PodMaps> decide_maps(std::string_view policy, const std::string& store_path,
                                               const std::string& pod_name, const std::string& pod_uuid,
                                               bool dry_run, const ImageIds* image_ids);

// Gives the lease back (after a failed start, or when the pod is removed).
// The store's files that keep a released lease quarantined: everything of its ids in
// STORE/pods and STORE/shifted, except the shifted trees made for exactly its map (the
// cache's, there for the next pod with that map).
[[nodiscard]] idmap::InUse lease_files_in_use(sys::FdRef store);

[[nodiscard]] sys::Result<void> release_lease(const std::string& store_path, const std::string& lease_name);

}  // namespace pod::cmd
