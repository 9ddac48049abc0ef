// Interval arithmetic over ids, and the CLI's MAP syntax. Every end is computed in 64
// bits, so no range can wrap past 2^32 unnoticed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/idmap/subid.hpp"
#include "pod/idmap/userns.hpp"

namespace pod::idmap {

enum class IdKind { uid, gid };
[[nodiscard]] const char* kind_name(IdKind k);

// The kernel refuses to map (uid_t)-1, so a mapped range ends at or before this.
constexpr std::uint64_t kIdLimit = 0xffffffffULL;

[[nodiscard]] constexpr std::uint64_t range_end(IdRange r) { return std::uint64_t{r.start} + r.count; }

// A set of ids as sorted, disjoint, non-adjacent half-open intervals [start, end).
class RangeSet {
 public:
  struct Interval {
    std::uint64_t start = 0, end = 0;
  };
  RangeSet() = default;
  RangeSet(std::initializer_list<IdRange> ranges) {
    for (auto r : ranges) add(r);
  }

  void add(std::uint64_t start, std::uint64_t end);
  void add(IdRange r) { add(r.start, range_end(r)); }
  void add(const RangeSet& other);
  void subtract(std::uint64_t start, std::uint64_t end);
  void subtract(const RangeSet& other);

  [[nodiscard]] bool empty() const { return iv_.empty(); }
  [[nodiscard]] bool contains(std::uint64_t id) const { return first_common(id, id + 1).has_value(); }
  // The first id of [start, end) that is in the set / that is not.
  [[nodiscard]] std::optional<std::uint64_t> first_common(std::uint64_t start, std::uint64_t end) const;
  [[nodiscard]] std::optional<std::uint64_t> first_missing(std::uint64_t start, std::uint64_t end) const;
  [[nodiscard]] std::optional<std::uint64_t> first_common(IdRange r) const { return first_common(r.start, range_end(r)); }
  // The lowest id both sets hold.
  [[nodiscard]] std::optional<std::uint64_t> first_common(const RangeSet& other) const;
  [[nodiscard]] std::optional<std::uint64_t> first_missing(IdRange r) const { return first_missing(r.start, range_end(r)); }
  [[nodiscard]] std::uint64_t size() const;
  [[nodiscard]] const std::vector<Interval>& intervals() const { return iv_; }
  // "100000-165535, 200000" (inclusive ends), "none" when empty.
  [[nodiscard]] std::string str() const;

 private:
  std::vector<Interval> iv_;
};

// `s` with its narrowest gaps filled until at most `max_intervals` intervals remain
// (max_intervals >= 1): a superset of `s` in fewer, wider ranges.
[[nodiscard]] RangeSet coarsened(const RangeSet& s, std::size_t max_intervals);

// First fit: the lowest start s with [s, s+size) inside one interval of `pool`, none of
// it in `taken`, and s - (that interval's start) a multiple of `align`.
[[nodiscard]] std::optional<std::uint32_t> first_fit(const RangeSet& pool, const RangeSet& taken,
                                                     std::uint64_t size, std::uint64_t align);

// Deterministic pick: the candidates are the starts of `step`-sized blocks of each pool
// interval that hold `size` ids; a hash of `name` chooses the first candidate and the
// search probes onward from it (wrapping) until one is free of `taken`.
[[nodiscard]] std::optional<std::uint32_t> pick_fit(const RangeSet& pool, const RangeSet& taken,
                                                    std::uint64_t size, std::uint64_t step,
                                                    std::string_view name);
// FNV-1a (64 bit): stable across builds and machines, unlike std::hash.
[[nodiscard]] std::uint64_t name_hash(std::string_view name);

// The host ids a map uses.
[[nodiscard]] RangeSet host_ids(const IdMap& m);

// Structure checks the kernel would make, with reasons: at most 340 extents, count > 0,
// no id past 4294967294 on either side, extents disjoint inside and outside.
[[nodiscard]] Result<void> check_map_shape(const IdMap& m, IdKind kind);

// MAP: "CONTAINER:HOST:COUNT[,...]"; an extent applies to uids and gids unless prefixed
// "u:" or "g:". Both maps must come out non-empty and well formed.
struct MapSpec {
  IdMap uids;
  IdMap gids;
};
[[nodiscard]] Result<MapSpec> parse_map_spec(std::string_view text);

}  // namespace pod::idmap
