// Sharing a tree with a pod by POSIX ACL entries, the owners unchanged (--volume :acl):
// each directory and regular file gets ACL_USER and ACL_GROUP entries for the pod's ids,
// and each directory the same as its default ACL, so what the pod creates there keeps
// the grant.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift {

struct AclGrant {
  std::vector<std::uint32_t> uids, gids;  // as the caller sees them
};

// `acl` (a system.posix_acl_* value; empty: none, then made from `mode`'s bits) with an
// entry per granted id: rwx for a directory, rw for a file plus x when its owner may
// execute it; an entry already there gains those bits. The mask covers every group-class
// entry, as setfacl recomputes it. EINVAL for a malformed value.
[[nodiscard]] sys::Result<std::string> acl_with_grant(std::string_view acl, mode_t mode, const AclGrant& g);

// Walks `top` as the shift engine does (by fds, no symlink followed, no other filesystem,
// all cores) and writes the access ACL of every directory and regular file and the
// default ACL of every directory. Returns the inodes changed.
[[nodiscard]] sys::Result<std::uint64_t> grant_tree(sys::FdRef top, const AclGrant& g);

}  // namespace pod::shift
