// Census: which uids and gids the inodes of a tree use, walked by descriptors without
// following symlinks, so a pod's map can be checked to cover them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "pod/idmap/ranges.hpp"
#include "pod/sys/fd.hpp"

namespace pod::idmap {

struct Census {
  // Each id used, with the first path (relative to the tree, "." for its top) that
  // uses it: enough to name a path in an error.
  std::map<std::uint32_t, std::string> uids;
  std::map<std::uint32_t, std::string> gids;
  std::uint64_t inodes = 0;  // entries seen, the top included

  [[nodiscard]] RangeSet uid_set() const;
  [[nodiscard]] RangeSet gid_set() const;
};

// Walks dir/path (a directory). Symlinks count by their own owner and are not followed;
// other filesystems mounted below are walked too. Trees deeper than 4096 are ELOOP.
[[nodiscard]] Result<Census> census(sys::FdRef dir, std::string_view path);

// The first path below dir/path (the top included) owned by a uid in `uids` or a gid
// in `gids`; nullopt when there is none. Stops at the first hit.
[[nodiscard]] Result<std::optional<std::string>> find_owned_by(sys::FdRef dir, std::string_view path,
                                                               const RangeSet& uids, const RangeSet& gids);

}  // namespace pod::idmap
