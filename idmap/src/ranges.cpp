#include "pod/idmap/ranges.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pod::idmap {

using sys::make_error;

const char* kind_name(IdKind k) { return k == IdKind::uid ? "uid" : "gid"; }

void RangeSet::add(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return;
  // Merge with every interval that overlaps or touches [start, end).
  auto first = std::lower_bound(iv_.begin(), iv_.end(), start,
                                [](const Interval& i, std::uint64_t s) { return i.end < s; });
  auto last = first;
  while (last != iv_.end() && last->start <= end) {
    start = std::min(start, last->start);
    end = std::max(end, last->end);
    ++last;
  }
  first = iv_.erase(first, last);
  iv_.insert(first, Interval{start, end});
}

void RangeSet::add(const RangeSet& other) {
  for (auto& i : other.iv_) add(i.start, i.end);
}

void RangeSet::subtract(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return;
  std::vector<Interval> out;
  out.reserve(iv_.size() + 1);
  for (auto& i : iv_) {
    if (i.end <= start || i.start >= end) {
      out.push_back(i);
      continue;
    }
    if (i.start < start) out.push_back({i.start, start});
    if (i.end > end) out.push_back({end, i.end});
  }
  iv_ = std::move(out);
}

void RangeSet::subtract(const RangeSet& other) {
  for (auto& i : other.iv_) subtract(i.start, i.end);
}

std::optional<std::uint64_t> RangeSet::first_common(std::uint64_t start, std::uint64_t end) const {
  if (start >= end) return std::nullopt;
  // The first interval that ends after start.
  auto it = std::upper_bound(iv_.begin(), iv_.end(), start,
                             [](std::uint64_t s, const Interval& i) { return s < i.end; });
  if (it == iv_.end() || it->start >= end) return std::nullopt;
  return std::max(start, it->start);
}

std::optional<std::uint64_t> RangeSet::first_common(const RangeSet& other) const {
  // other's intervals are sorted: the first hit is the lowest.
  for (const auto& i : other.iv_)
    if (auto c = first_common(i.start, i.end)) return c;
  return std::nullopt;
}

std::optional<std::uint64_t> RangeSet::first_missing(std::uint64_t start, std::uint64_t end) const {
  if (start >= end) return std::nullopt;
  auto it = std::upper_bound(iv_.begin(), iv_.end(), start,
                             [](std::uint64_t s, const Interval& i) { return s < i.end; });
  if (it == iv_.end() || it->start > start) return start;
  // Intervals never touch, so the one holding start ends before the next begins.
  if (it->end < end) return it->end;
  return std::nullopt;
}

std::uint64_t RangeSet::size() const {
  std::uint64_t n = 0;
  for (auto& i : iv_) n += i.end - i.start;
  return n;
}

std::string RangeSet::str() const {
  if (iv_.empty()) return "none";
  std::string out;
  for (auto& i : iv_) {
    if (!out.empty()) out += ", ";
    out += i.end - i.start == 1 ? fmt::format("{}", i.start) : fmt::format("{}-{}", i.start, i.end - 1);
  }
  return out;
}

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t base, std::uint64_t align) {
  if (align <= 1 || v <= base) return std::max(v, base);
  return base + (v - base + align - 1) / align * align;
}

}  // namespace

RangeSet coarsened(const RangeSet& s, std::size_t max_intervals) {
  const auto& iv = s.intervals();
  if (iv.size() <= max_intervals || max_intervals == 0) return s;
  // Fill the (n - max) narrowest gaps: the gaps up to the k-th narrowest width, ties
  // taken in order until enough are filled.
  std::vector<std::uint64_t> widths;
  for (std::size_t i = 1; i < iv.size(); ++i) widths.push_back(iv[i].start - iv[i - 1].end);
  std::size_t fill = iv.size() - max_intervals;
  std::vector<std::uint64_t> sorted = widths;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(fill - 1), sorted.end());
  std::uint64_t limit = sorted[fill - 1];
  std::size_t below = static_cast<std::size_t>(std::count_if(widths.begin(), widths.end(), [&](auto w) { return w < limit; }));
  std::size_t ties = fill - below;
  RangeSet out = s;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    bool take = widths[i] < limit || (widths[i] == limit && ties > 0 && ties--);
    if (take) out.add(iv[i].end, iv[i + 1].start);
  }
  return out;
}

std::optional<std::uint32_t> first_fit(const RangeSet& pool, const RangeSet& taken, std::uint64_t size,
                                       std::uint64_t align) {
  if (size == 0) return std::nullopt;
  for (auto& p : pool.intervals()) {
    std::uint64_t s = p.start;
    while (s + size <= p.end && s + size <= kIdLimit) {
      auto hit = taken.first_common(s, s + size);
      if (!hit) return static_cast<std::uint32_t>(s);
      // Skip past the whole taken interval that holds the hit.
      auto miss = taken.first_missing(*hit, p.end);
      std::uint64_t next = miss ? *miss : p.end;
      s = align_up(next, p.start, align);
    }
  }
  return std::nullopt;
}

std::uint64_t name_hash(std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::optional<std::uint32_t> pick_fit(const RangeSet& pool, const RangeSet& taken, std::uint64_t size,
                                      std::uint64_t step, std::string_view name) {
  if (size == 0 || step == 0) return std::nullopt;
  // Candidates per pool interval, so the n-th candidate is found without listing them.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;  // (interval start, candidates)
  std::uint64_t total = 0;
  for (auto& p : pool.intervals()) {
    std::uint64_t end = std::min(p.end, kIdLimit);
    if (end < p.start + size) continue;
    std::uint64_t n = (end - size - p.start) / step + 1;
    blocks.emplace_back(p.start, n);
    total += n;
  }
  if (total == 0) return std::nullopt;
  std::uint64_t first = name_hash(name) % total;
  for (std::uint64_t k = 0; k < total; ++k) {
    std::uint64_t idx = (first + k) % total;
    std::uint64_t s = 0;
    for (auto& [base, n] : blocks) {
      if (idx < n) {
        s = base + idx * step;
        break;
      }
      idx -= n;
    }
    if (!taken.first_common(s, s + size)) return static_cast<std::uint32_t>(s);
  }
  return std::nullopt;
}

RangeSet host_ids(const IdMap& m) {
  RangeSet s;
  for (auto& e : m.extents) s.add(e.outer, std::uint64_t{e.outer} + e.count);
  return s;
}

Result<void> check_map_shape(const IdMap& m, IdKind kind) {
  const char* k = kind_name(kind);
  if (m.extents.empty()) return make_error(EINVAL, "the {} map is empty", k);
  if (m.extents.size() > 340) return make_error(EINVAL, "the {} map has {} extents; the kernel takes at most 340", k, m.extents.size());
  RangeSet inner, outer;
  for (auto& e : m.extents) {
    std::string ext = fmt::format("{}:{}:{}", e.inner, e.outer, e.count);
    if (e.count == 0) return make_error(EINVAL, "{} extent {}: count is 0", k, ext);
    if (std::uint64_t{e.inner} + e.count > kIdLimit || std::uint64_t{e.outer} + e.count > kIdLimit)
      return make_error(EINVAL, "{} extent {}: ids past {}", k, ext, kIdLimit - 1);
    if (auto c = inner.first_common(e.inner, std::uint64_t{e.inner} + e.count))
      return make_error(EINVAL, "{} extent {}: {} {} in the namespace is mapped twice", k, ext, k, *c);
    if (auto c = outer.first_common(e.outer, std::uint64_t{e.outer} + e.count))
      return make_error(EINVAL, "{} extent {}: {} {} on the host is mapped twice", k, ext, k, *c);
    inner.add(e.inner, std::uint64_t{e.inner} + e.count);
    outer.add(e.outer, std::uint64_t{e.outer} + e.count);
  }
  return {};
}

namespace {

bool parse_number(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return v <= kIdLimit;
}

}  // namespace

Result<MapSpec> parse_map_spec(std::string_view text) {
  MapSpec spec;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    bool to_u = true, to_g = true;
    std::string_view body = item;
    if (body.starts_with("u:")) to_g = false, body.remove_prefix(2);
    else if (body.starts_with("g:")) to_u = false, body.remove_prefix(2);
    auto c1 = body.find(':');
    auto c2 = c1 == std::string_view::npos ? c1 : body.find(':', c1 + 1);
    std::uint64_t inner = 0, outer = 0, count = 0;
    if (c2 == std::string_view::npos || body.find(':', c2 + 1) != std::string_view::npos ||
        !parse_number(body.substr(0, c1), inner) || !parse_number(body.substr(c1 + 1, c2 - c1 - 1), outer) ||
        !parse_number(body.substr(c2 + 1), count))
      return make_error(EINVAL, "map extent '{}' is not [u:|g:]CONTAINER:HOST:COUNT in decimal", item);
    if (count == 0) return make_error(EINVAL, "map extent '{}': count is 0", item);
    if (inner + count > kIdLimit || outer + count > kIdLimit)
      return make_error(EINVAL, "map extent '{}': ids past {}", item, kIdLimit - 1);
    Extent e{static_cast<std::uint32_t>(inner), static_cast<std::uint32_t>(outer), static_cast<std::uint32_t>(count)};
    if (to_u) spec.uids.extents.push_back(e);
    if (to_g) spec.gids.extents.push_back(e);
  }
  if (spec.uids.extents.empty()) return make_error(EINVAL, "map '{}' maps no uids (add an extent without a prefix or with u:)", text);
  if (spec.gids.extents.empty()) return make_error(EINVAL, "map '{}' maps no gids (add an extent without a prefix or with g:)", text);
  POD_TRY_CTX(check_map_shape(spec.uids, IdKind::uid), "map '{}'", text);
  POD_TRY_CTX(check_map_shape(spec.gids, IdKind::gid), "map '{}'", text);
  return spec;
}

}  // namespace pod::idmap
