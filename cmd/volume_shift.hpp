// Re-owning a volume's tree, shared by `pod volume remap` and `--volume SRC:DST:chown`.
#pragma once

#include <string>

#include "pod/idmap/ranges.hpp"
#include "pod/sys/fd.hpp"
#include "run_setup.hpp"

namespace pod::cmd {

// Refused (EBUSY, naming the pod) while a pod of the store in `store_dir`, running or being
// started, has a volume at, above or below `dir` (a resolved host path): re-owning it would
// change files under that pod's feet.
[[nodiscard]] sys::Result<void> refuse_if_in_use(sys::FdRef store_dir, const std::string& dir);

// --volume SRC:DST:chown: the volume's tree re-owned into `pod_map` (ids as `pod` sees
// them) by the shift engine, as `pod volume remap` does and with the same journal beside
// it: from the map that journal says the tree was last shifted to, or from the ids as
// they are (the identity over the pod's ranges) when it never was. Nothing to do when the
// tree is in `pod_map` already.
[[nodiscard]] sys::Result<void> chown_volume(const VolumeSource& v, const idmap::MapSpec& pod_map);

// --volume SRC:DST:acl: the pod's root and each app's user and group (as `pod` sees them)
// get ACL entries on the volume's tree, the owners unchanged (shift/acl_grant.hpp).
[[nodiscard]] sys::Result<void> grant_volume(const VolumeSource& v, const Plan& plan);

}  // namespace pod::cmd
