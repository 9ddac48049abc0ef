// The ids kept in extended attributes, rewritten on byte buffers: file capabilities
// (security.capability) and POSIX ACLs (system.posix_acl_access, _default).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pod/shift/idshift.hpp"

namespace pod::shift {

inline constexpr const char* kCapXattr = "security.capability";
inline constexpr const char* kAclAccess = "system.posix_acl_access";
inline constexpr const char* kAclDefault = "system.posix_acl_default";

struct Rewrite {
  enum class Status { same, changed, unmapped, invalid };
  Status status = Status::same;
  std::string value;     // the new value when changed (or overflowed)
  std::string problem;   // unmapped/invalid: which id, for the error list
};

// v1 and v2 (valid in any namespace) become v3 with the target map's root; a v3 root id
// goes through the uid shift. A v2/v1 with no root in the target map is unmapped.
[[nodiscard]] Rewrite rewrite_capability(std::string_view value, const Shift& s, bool resuming, Unmapped how);

// The host uid a v3 value names as root (nullopt for v1/v2 or a malformed value).
[[nodiscard]] std::optional<std::uint32_t> capability_rootid(std::string_view value);

// ACL_USER entries through the uid shift, ACL_GROUP through the gid shift; the owner,
// group, mask and other entries carry no id.
[[nodiscard]] Rewrite rewrite_acl(std::string_view value, const Shift& s, bool resuming, Unmapped how);

// The ids an ACL names, for verify: calls f(is_user, id) per named entry. False when
// the value is malformed.
template <class F>
bool for_each_acl_id(std::string_view value, F&& f);

namespace detail {
[[nodiscard]] bool acl_valid(std::string_view value);
[[nodiscard]] std::uint32_t le32(const char* p);
[[nodiscard]] std::uint16_t le16(const char* p);
}  // namespace detail

template <class F>
bool for_each_acl_id(std::string_view value, F&& f) {
  if (!detail::acl_valid(value)) return false;
  for (std::size_t off = 4; off < value.size(); off += 8) {
    std::uint16_t tag = detail::le16(value.data() + off);
    if (tag == 0x02 || tag == 0x08) f(tag == 0x02, detail::le32(value.data() + off + 4));
  }
  return true;
}

}  // namespace pod::shift
