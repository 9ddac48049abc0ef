#include "pod/shift/xattrs.hpp"

#include <linux/capability.h>

#include <fmt/format.h>

namespace pod::shift {

namespace detail {

std::uint32_t le32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
}
std::uint16_t le16(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>(b[0] | b[1] << 8);
}

// posix_acl_xattr_header {le32 version = 2} then {le16 tag, le16 perm, le32 id} each.
bool acl_valid(std::string_view v) { return v.size() >= 4 && (v.size() - 4) % 8 == 0 && le32(v.data()) == 2; }

}  // namespace detail

namespace {

using detail::le32;

void put32(std::string& s, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[off + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

struct Mapped {
  bool ok = true;
  std::uint32_t id = 0;
};

Mapped map_id(const KindShift& k, std::uint32_t id, bool resuming, Unmapped how) {
  auto a = k.map(id, resuming);
  switch (a.verdict) {
    case KindShift::Verdict::shift: return {true, a.id};
    case KindShift::Verdict::done: return {true, id};
    case KindShift::Verdict::unmapped: break;
  }
  if (how == Unmapped::overflow) return {true, kOverflowId};
  return {false, id};
}

}  // namespace

std::optional<std::uint32_t> capability_rootid(std::string_view v) {
  if (v.size() != XATTR_CAPS_SZ_3 || (le32(v.data()) & VFS_CAP_REVISION_MASK) != VFS_CAP_REVISION_3) return std::nullopt;
  return le32(v.data() + XATTR_CAPS_SZ_2);
}

Rewrite rewrite_capability(std::string_view v, const Shift& s, bool resuming, Unmapped how) {
  Rewrite r;
  if (v.size() < 4) return {Rewrite::Status::invalid, {}, "security.capability shorter than its header"};
  std::uint32_t magic = le32(v.data());
  std::uint32_t rev = magic & VFS_CAP_REVISION_MASK;
  std::uint32_t flags = magic & VFS_CAP_FLAGS_MASK;
  std::size_t want = rev == VFS_CAP_REVISION_1 ? XATTR_CAPS_SZ_1 : rev == VFS_CAP_REVISION_2 ? XATTR_CAPS_SZ_2
                   : rev == VFS_CAP_REVISION_3 ? XATTR_CAPS_SZ_3 : 0;
  if (want == 0 || v.size() != want)
    return {Rewrite::Status::invalid, {}, fmt::format("security.capability revision {:#x} of {} bytes", rev, v.size())};
  std::string out(XATTR_CAPS_SZ_3, '\0');
  put32(out, 0, VFS_CAP_REVISION_3 | flags);
  // v1 holds one 32-bit word of each set, v2 and v3 two: copy what there is.
  out.replace(4, v.size() >= XATTR_CAPS_SZ_2 ? 16 : 8, v.substr(4, v.size() >= XATTR_CAPS_SZ_2 ? 16 : 8));
  std::uint32_t root = 0;
  if (rev == VFS_CAP_REVISION_3) {
    std::uint32_t old = le32(v.data() + XATTR_CAPS_SZ_2);
    Mapped m = map_id(s.uids, old, resuming, how);
    if (!m.ok) return {Rewrite::Status::unmapped, {}, fmt::format("capability root uid {}", old)};
    if (m.id == old) return r;
    root = m.id;
  } else {
    if (!s.target_root) return {Rewrite::Status::unmapped, {}, "v2 capability: the target map has no root (uid 0)"};
    root = *s.target_root;
  }
  put32(out, XATTR_CAPS_SZ_2, root);
  r.status = Rewrite::Status::changed;
  r.value = std::move(out);
  return r;
}

Rewrite rewrite_acl(std::string_view v, const Shift& s, bool resuming, Unmapped how) {
  Rewrite r;
  if (!detail::acl_valid(v)) return {Rewrite::Status::invalid, {}, fmt::format("ACL of {} bytes is malformed", v.size())};
  std::string out(v);
  for (std::size_t off = 4; off < v.size(); off += 8) {
    std::uint16_t tag = detail::le16(v.data() + off);
    if (tag != 0x02 && tag != 0x08) continue;  // ACL_USER, ACL_GROUP
    std::uint32_t old = le32(v.data() + off + 4);
    Mapped m = map_id(tag == 0x02 ? s.uids : s.gids, old, resuming, how);
    if (!m.ok) return {Rewrite::Status::unmapped, {}, fmt::format("ACL entry {}:{}", tag == 0x02 ? "user" : "group", old)};
    if (m.id != old) put32(out, off + 4, m.id), r.status = Rewrite::Status::changed;
  }
  if (r.status == Rewrite::Status::changed) r.value = std::move(out);
  return r;
}

}  // namespace pod::shift
