// Id maps and the store's user namespace for ordinary users.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pod/idmap/subid.hpp"

namespace pod::idmap {

struct Extent {
  std::uint32_t inner = 0;  // id inside the namespace
  std::uint32_t outer = 0;  // id outside
  std::uint32_t count = 0;
};

struct IdMap {
  std::vector<Extent> extents;
  // uid_map file syntax: "INNER OUTER COUNT\n" per extent.
  [[nodiscard]] std::string proc_text() const;
  // The CLI's MAP syntax: "INNER:OUTER:COUNT[,...]".
  [[nodiscard]] std::string str() const;
  [[nodiscard]] std::uint64_t size() const;
};

// The mapping of the store of the calling user: its own id as 0 and its subordinate
// ranges (in /etc/subuid and /etc/subgid order) as 1..N. `subordinate` is false when
// the user has no ranges: then only the user's own id is mapped.
struct StoreMapping {
  IdMap uids;
  IdMap gids;
  bool subordinate = false;
  [[nodiscard]] std::string describe() const;
};

[[nodiscard]] Result<StoreMapping> store_mapping_for_caller(const Warn& warn);

// Moves the calling process, which must be single-threaded, into a new user namespace
// with `m`: through newuidmap/newgidmap (Debian's uidmap) when it has subordinate ids,
// else by writing the maps directly (setgroups denied first, as the kernel requires).
// Afterwards the process is uid 0 and gid 0 inside, with a full capability set there.
[[nodiscard]] Result<void> enter_user_namespace(const StoreMapping& m);

// After entering a store namespace: uid 0 and gid 0 inside, no supplementary groups
// (they are unmapped there).
[[nodiscard]] Result<void> become_namespace_root();

}  // namespace pod::idmap
