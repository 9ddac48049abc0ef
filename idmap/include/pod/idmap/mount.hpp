// Idmapped mounts (Linux 5.12; overlayfs takes them as lower layers since 5.19).
#pragma once

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::idmap {

// A detached mount of the directory `dir` (not what is mounted below it) whose inode
// owners are seen through the maps of the user namespace `userns`: a file stored as
// uid N shows as the host uid that userns maps N to (0 -> 100000 for "0 100000 65536").
// Attach it with move_mount, or hand it to overlayfs.
// EPERM: not privileged over the filesystem (an ordinary user on the host disk) or
// over userns. EINVAL: the filesystem (or an overlay) cannot be idmapped.
[[nodiscard]] sys::Result<sys::Fd> idmapped_mount(sys::FdRef dir, sys::FdRef userns);

}  // namespace pod::idmap
