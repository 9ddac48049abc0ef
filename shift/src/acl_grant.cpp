#include "pod/shift/acl_grant.hpp"

#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "pod/shift/xattrs.hpp"
#include "walk.hpp"

namespace pod::shift {

namespace {

enum : std::uint16_t { kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10, kOther = 0x20 };
constexpr std::uint32_t kUndefinedId = ~0U;

void put(std::string& s, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

Result<std::string> read_acl(const char* path, const char* name) {
  std::string v(256, '\0');
  for (;;) {
    ssize_t n = ::getxattr(path, name, v.data(), v.size());
    if (n >= 0) return v.substr(0, static_cast<std::size_t>(n));
    if (errno == ENODATA) return std::string();
    if (errno != ERANGE) return sys::sys_error("reading {}", name);
    v.resize(v.size() * 4);
  }
}

}  // namespace

Result<std::string> acl_with_grant(std::string_view acl, mode_t mode, const AclGrant& g) {
  // (tag, id) -> perm, kept sorted as the kernel wants the entries.
  std::map<std::pair<std::uint16_t, std::uint32_t>, std::uint16_t> e;
  if (acl.empty()) {
    e[{kUserObj, kUndefinedId}] = static_cast<std::uint16_t>((mode >> 6) & 7);
    e[{kGroupObj, kUndefinedId}] = static_cast<std::uint16_t>((mode >> 3) & 7);
    e[{kOther, kUndefinedId}] = static_cast<std::uint16_t>(mode & 7);
  } else {
    if (!detail::acl_valid(acl)) return sys::make_error(EINVAL, "a malformed ACL");
    for (std::size_t off = 4; off < acl.size(); off += 8) {
      std::uint16_t tag = detail::le16(acl.data() + off);
      std::uint32_t id = (tag == kUser || tag == kGroup) ? detail::le32(acl.data() + off + 4) : kUndefinedId;
      e[{tag, id}] = detail::le16(acl.data() + off + 2);
    }
  }
  std::uint16_t perm = S_ISDIR(mode) ? 7 : static_cast<std::uint16_t>(6 | ((mode & S_IXUSR) ? 1 : 0));
  for (auto u : g.uids) e[{kUser, u}] |= perm;
  for (auto gid : g.gids) e[{kGroup, gid}] |= perm;
  std::uint16_t mask = 0;
  for (auto& [k, p] : e)
    if (k.first == kUser || k.first == kGroup || k.first == kGroupObj) mask |= p;
  e[{kMask, kUndefinedId}] = mask;
  std::string out;
  put(out, 2, 4);
  for (auto& [k, p] : e) {
    put(out, k.first, 2);
    put(out, p, 2);
    put(out, k.second, 4);
  }
  return out;
}

Result<std::uint64_t> grant_tree(sys::FdRef top, const AclGrant& g) {
  std::atomic<std::uint64_t> changed{0};
  detail::WalkCounts counts;
  auto visit = [&](const detail::Node& n) -> Result<void> {
    if (!S_ISDIR(n.st.st_mode) && !S_ISREG(n.st.st_mode)) return {};
    detail::ProcPath pp(n.fd);
    for (const char* name : {kAclAccess, kAclDefault}) {
      if (name == kAclDefault && !S_ISDIR(n.st.st_mode)) continue;
      std::string old = POD_TRY_CTX(read_acl(pp.c_str(), name), "'{}'", n.path());
      // A directory without a default ACL gets one made from its mode: what is created
      // there then starts from the directory's own bits plus the grant.
      std::string acl = POD_TRY_CTX(acl_with_grant(old, n.st.st_mode, g), "{} of '{}'", name, n.path());
      if (acl == old) continue;
      if (::setxattr(pp.c_str(), name, acl.data(), acl.size(), 0) != 0)
        return sys::sys_error("writing {} of '{}'", name, n.path());
    }
    changed.fetch_add(1, std::memory_order_relaxed);
    return {};
  };
  POD_TRY(detail::walk(top, std::max(1u, std::thread::hardware_concurrency()), visit, counts, [] {}));
  return changed.load();
}

}  // namespace pod::shift
