// The shifted-tree cache: "layer X under map M" is a directory shifted once and shared
// by every pod with the same map. It takes directory fds (a layer's root, the cache
// directory, STORE/shifted), never store types.
//
//   CACHE/<key>/root            the shifted copy        key = H(tree digest, maps, kind)
//   CACHE/<key>/origin          the tree digest, both maps and the kind, checked before
//                               reuse; written last
//   CACHE/refs/<key>.<pod>      an empty file per pod using the entry, made and removed
//                               under CACHE/lock (older stores: CACHE/refs.json,
//                               {"<key>": ["pod", ...]}, still read)
//   CACHE/tmp-*                 entries being built; gc removes them
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pod/shift/copy.hpp"

namespace pod::shift {

// 32 hex digits over the digest, the canonical text of both maps and the kind of copy
// (a metacopy entry is useless without its layer below it, so it has a key of its own).
[[nodiscard]] std::string cache_key(std::string_view tree_digest, const idmap::MapSpec& source,
                                    const idmap::MapSpec& target, CopyData data = CopyData::full);

struct CacheEntry {
  std::string key;
  sys::Fd root;        // CACHE/<key>/root
  bool built = false;  // made by this call, not reused
};

class ShiftCache {
 public:
  explicit ShiftCache(sys::FdRef dir) : dir_(dir) {}

  // The tree `tree_root` (owned under `source`) shifted to `target`, with a reference
  // for `pod`. An entry is reused only when its origin names this digest, these maps and
  // this kind; anything else under the key is removed and rebuilt by a shifted copy of
  // the layer (the layer itself is never changed), made under a temporary name and
  // named only when whole. `data`: a full copy, or a metadata-only one for stacking
  // right above the layer (see CopyData).
  [[nodiscard]] Result<CacheEntry> acquire(sys::FdRef tree_root, std::string_view tree_digest,
                                           const idmap::MapSpec& source, const idmap::MapSpec& target,
                                           std::string_view pod, CopyData data = CopyData::full,
                                           Unmapped unmapped = Unmapped::error);
  // The canonical text of the map the entry `key` was shifted to, from its origin file
  // (nullopt when the entry or its origin is missing or unreadable).
  [[nodiscard]] std::optional<std::string> target_of(std::string_view key) const;
  // Drops the pod's reference (no error when it had none).
  [[nodiscard]] Result<void> release(std::string_view key, std::string_view pod);
  // The pods referencing each key.
  [[nodiscard]] Result<std::vector<std::pair<std::string, std::vector<std::string>>>> refs() const;
  // Removes entries no pod references and unfinished builds; returns their names.
  [[nodiscard]] Result<std::vector<std::string>> gc();

 private:
  [[nodiscard]] Result<bool> usable(std::string_view key, std::string_view origin) const;
  sys::FdRef dir_;
};

}  // namespace pod::shift
