// Map arithmetic for the shift engine: where a host id goes when a tree moves from one
// id map to another. Pure, so every edge (extent ends, overflow, ids outside both maps)
// is checked by unit tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pod/idmap/ranges.hpp"
#include "pod/idmap/userns.hpp"
#include "pod/sys/error.hpp"

namespace pod::shift {

using sys::Result;

// What happens to an id outside the source map: an error naming the paths, or the
// overflow id (the kernel's own choice for ids a namespace cannot see). Never a wrap.
enum class Unmapped { error, overflow };
constexpr std::uint32_t kOverflowId = 65534;

// Host ids of one kind (uids or gids): source host -> target host, through the inner
// id both maps share.
class KindShift {
 public:
  enum class Verdict {
    shift,     // in the source map: goes to `id`
    done,      // already in the target map (a resumed run)
    unmapped,  // in neither: an error, or kOverflowId with Unmapped::overflow
  };
  struct Answer {
    Verdict verdict = Verdict::unmapped;
    std::uint32_t id = 0;
  };

  // Source inner ids the target map lacks leave their host ids unmapped.
  [[nodiscard]] static KindShift make(const idmap::IdMap& from, const idmap::IdMap& to);

  // `resuming`: an id in the target map was put there by an earlier run of the same
  // shift; otherwise it is an id the source map does not cover.
  [[nodiscard]] Answer map(std::uint32_t host, bool resuming) const;
  [[nodiscard]] bool in_target(std::uint32_t host) const { return target_.contains(host); }
  [[nodiscard]] const idmap::RangeSet& source() const { return source_; }
  [[nodiscard]] const idmap::RangeSet& target() const { return target_; }

 private:
  struct Piece {
    std::uint64_t src = 0, dst = 0, count = 0;
  };
  std::vector<Piece> pieces_;  // sorted by src, disjoint
  idmap::RangeSet source_, target_;
};

// Both kinds, plus the host uid that is root in each map (for file capabilities).
struct Shift {
  KindShift uids, gids;
  std::optional<std::uint32_t> source_root, target_root;
};

// Refuses maps whose host ranges overlap, uids or gids: then an inode's owner would not
// say whether it was shifted already, and a killed run could not be resumed safely.
[[nodiscard]] Result<Shift> make_shift(const idmap::MapSpec& from, const idmap::MapSpec& to);

// The same for a copy, which reads one tree and writes another: there the maps may
// overlap (an ordinary user's store map and a lease from the same subordinate range).
[[nodiscard]] Shift copy_shift(const idmap::MapSpec& from, const idmap::MapSpec& to);

// The host id that `m` maps inner `id` to.
[[nodiscard]] std::optional<std::uint32_t> outer_of(const idmap::IdMap& m, std::uint32_t id);

// Re-expresses the host side of `m` as seen inside a user namespace with map `ns` (a
// rootless run works inside the store's namespace, where host id H is ns inner id I).
// A host id the namespace does not map is EPERM, named.
[[nodiscard]] Result<idmap::IdMap> view_through(const idmap::IdMap& m, const idmap::IdMap& ns,
                                                idmap::IdKind kind);

// The canonical text of a map pair: extents sorted by inner id, "u:"/"g:" prefixes only
// when the two kinds differ. Equal maps give equal text (journal and cache keys).
[[nodiscard]] std::string canonical_text(const idmap::MapSpec& m);

}  // namespace pod::shift
