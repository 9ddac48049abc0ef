#include "pod/shift/idshift.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pod::shift {

using idmap::Extent;
using idmap::IdKind;
using idmap::IdMap;
using idmap::RangeSet;

namespace {

std::vector<Extent> sorted_by_inner(const IdMap& m) {
  std::vector<Extent> v = m.extents;
  std::sort(v.begin(), v.end(), [](const Extent& a, const Extent& b) { return a.inner < b.inner; });
  return v;
}

}  // namespace

KindShift KindShift::make(const IdMap& from, const IdMap& to) {
  KindShift s;
  for (auto& e : from.extents) s.source_.add(e.outer, std::uint64_t{e.outer} + e.count);
  for (auto& e : to.extents) s.target_.add(e.outer, std::uint64_t{e.outer} + e.count);
  // Intersect the inner ranges of each pair of extents: that part of the source
  // extent's host ids lands on the matching part of the target extent's.
  for (auto& f : from.extents) {
    std::uint64_t fs = f.inner, fe = fs + f.count;
    for (auto& t : to.extents) {
      std::uint64_t ts = t.inner, te = ts + t.count;
      std::uint64_t lo = std::max(fs, ts), hi = std::min(fe, te);
      if (lo >= hi) continue;
      s.pieces_.push_back({f.outer + (lo - fs), t.outer + (lo - ts), hi - lo});
    }
  }
  std::sort(s.pieces_.begin(), s.pieces_.end(), [](const Piece& a, const Piece& b) { return a.src < b.src; });
  return s;
}

KindShift::Answer KindShift::map(std::uint32_t host, bool resuming) const {
  std::uint64_t h = host;
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), h, [](std::uint64_t v, const Piece& p) { return v < p.src; });
  if (it != pieces_.begin()) {
    --it;
    if (h < it->src + it->count) return {Verdict::shift, static_cast<std::uint32_t>(it->dst + (h - it->src))};
  }
  // In the source map but without a target: unmapped, even if it also looks done.
  if (source_.contains(h)) return {Verdict::unmapped, host};
  if (resuming && target_.contains(h)) return {Verdict::done, host};
  return {Verdict::unmapped, host};
}

std::optional<std::uint32_t> outer_of(const IdMap& m, std::uint32_t id) {
  for (auto& e : m.extents)
    if (id >= e.inner && std::uint64_t{id} < std::uint64_t{e.inner} + e.count) return e.outer + (id - e.inner);
  return std::nullopt;
}

Result<Shift> make_shift(const idmap::MapSpec& from, const idmap::MapSpec& to) {
  for (IdKind k : {IdKind::uid, IdKind::gid}) {
    const IdMap& f = k == IdKind::uid ? from.uids : from.gids;
    const IdMap& t = k == IdKind::uid ? to.uids : to.gids;
    RangeSet fh = idmap::host_ids(f), th = idmap::host_ids(t);
    if (auto common = fh.first_common(th))
      return sys::make_error(EINVAL,
                             "the source and target maps share host {} {} ({} and {}): the owner of a file "
                             "would not tell whether it was shifted already; remap in two steps through a "
                             "range that overlaps neither",
                             idmap::kind_name(k), *common, fh.str(), th.str());
  }
  return copy_shift(from, to);
}

Shift copy_shift(const idmap::MapSpec& from, const idmap::MapSpec& to) {
  return Shift{KindShift::make(from.uids, to.uids), KindShift::make(from.gids, to.gids), outer_of(from.uids, 0),
               outer_of(to.uids, 0)};
}

Result<IdMap> view_through(const IdMap& m, const IdMap& ns, IdKind kind) {
  IdMap out;
  for (auto& e : m.extents) {
    std::uint64_t pos = e.outer, end = std::uint64_t{e.outer} + e.count;
    while (pos < end) {
      // The namespace extent holding host id `pos`, and how far it reaches.
      const Extent* hit = nullptr;
      for (auto& n : ns.extents)
        if (pos >= n.outer && pos < std::uint64_t{n.outer} + n.count) hit = &n;
      if (!hit)
        return sys::make_error(EPERM, "{} {} on the host is not mapped in your user namespace ({})",
                               idmap::kind_name(kind), pos, ns.str());
      std::uint64_t stop = std::min(end, std::uint64_t{hit->outer} + hit->count);
      out.extents.push_back({static_cast<std::uint32_t>(e.inner + (pos - e.outer)),
                             static_cast<std::uint32_t>(hit->inner + (pos - hit->outer)),
                             static_cast<std::uint32_t>(stop - pos)});
      pos = stop;
    }
  }
  return out;
}

std::string canonical_text(const idmap::MapSpec& m) {
  auto u = sorted_by_inner(m.uids), g = sorted_by_inner(m.gids);
  auto same = [](const Extent& a, const Extent& b) { return a.inner == b.inner && a.outer == b.outer && a.count == b.count; };
  auto text = [](const std::vector<Extent>& v, const char* prefix) {
    std::string out;
    for (auto& e : v) out += fmt::format("{}{}{}:{}:{}", out.empty() ? "" : ",", prefix, e.inner, e.outer, e.count);
    return out;
  };
  if (std::equal(u.begin(), u.end(), g.begin(), g.end(), same)) return text(u, "");
  return text(u, "u:") + "," + text(g, "g:");
}

}  // namespace pod::shift
