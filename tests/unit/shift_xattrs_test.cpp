// Capability and ACL values rewritten on byte buffers.
#include <doctest/doctest.h>
#include <linux/capability.h>

#include <cstring>

#include "pod/shift/xattrs.hpp"

using namespace pod::shift;

namespace {

Shift shift_of(const char* from, const char* to) {
  auto f = pod::idmap::parse_map_spec(from), t = pod::idmap::parse_map_spec(to);
  REQUIRE(f);
  REQUIRE(t);
  auto s = make_shift(*f, *t);
  REQUIRE(s);
  return *s;
}

std::string cap(std::uint32_t rev, std::uint32_t flags, std::uint32_t perm0, std::uint32_t perm1,
                std::optional<std::uint32_t> root) {
  vfs_ns_cap_data c{};
  c.magic_etc = rev | flags;
  c.data[0].permitted = perm0;
  c.data[1].permitted = perm1;
  c.rootid = root.value_or(0);
  std::size_t size = rev == VFS_CAP_REVISION_3 ? XATTR_CAPS_SZ_3 : rev == VFS_CAP_REVISION_2 ? XATTR_CAPS_SZ_2 : XATTR_CAPS_SZ_1;
  return std::string(reinterpret_cast<const char*>(&c), size);
}

std::string acl(std::initializer_list<std::array<std::uint32_t, 3>> entries) {
  std::string s(4, '\0');
  s[0] = 2;
  for (auto& e : entries) {
    char b[8];
    std::uint16_t tag = static_cast<std::uint16_t>(e[0]), perm = static_cast<std::uint16_t>(e[1]);
    std::memcpy(b, &tag, 2);
    std::memcpy(b + 2, &perm, 2);
    std::memcpy(b + 4, &e[2], 4);
    s.append(b, 8);
  }
  return s;
}

}  // namespace

TEST_CASE("a v2 capability becomes v3 with the target's root, sets and flags kept") {
  Shift s = shift_of("0:100000:65536", "0:200000:65536");
  auto r = rewrite_capability(cap(VFS_CAP_REVISION_2, VFS_CAP_FLAGS_EFFECTIVE, 1u << 10, 1u << 3, std::nullopt), s, false,
                              Unmapped::error);
  REQUIRE(r.status == Rewrite::Status::changed);
  CHECK(r.value == cap(VFS_CAP_REVISION_3, VFS_CAP_FLAGS_EFFECTIVE, 1u << 10, 1u << 3, 200000));
  CHECK(capability_rootid(r.value) == 200000u);
  // v1: one word of each set.
  auto v1 = rewrite_capability(cap(VFS_CAP_REVISION_1, 0, 1u << 10, 0, std::nullopt), s, false, Unmapped::error);
  REQUIRE(v1.status == Rewrite::Status::changed);
  CHECK(v1.value == cap(VFS_CAP_REVISION_3, 0, 1u << 10, 0, 200000));
}

TEST_CASE("a v3 root id is shifted; done when resuming; unmapped otherwise") {
  Shift s = shift_of("0:100000:65536", "0:200000:65536");
  auto r = rewrite_capability(cap(VFS_CAP_REVISION_3, 0, 7, 0, 100000), s, false, Unmapped::error);
  REQUIRE(r.status == Rewrite::Status::changed);
  CHECK(capability_rootid(r.value) == 200000u);
  CHECK(rewrite_capability(cap(VFS_CAP_REVISION_3, 0, 7, 0, 200000), s, true, Unmapped::error).status ==
        Rewrite::Status::same);
  auto bad = rewrite_capability(cap(VFS_CAP_REVISION_3, 0, 7, 0, 5), s, false, Unmapped::error);
  CHECK(bad.status == Rewrite::Status::unmapped);
  CHECK(bad.problem == "capability root uid 5");
  auto over = rewrite_capability(cap(VFS_CAP_REVISION_3, 0, 7, 0, 5), s, false, Unmapped::overflow);
  CHECK(capability_rootid(over.value) == kOverflowId);
}

TEST_CASE("a v2 capability with no root in the target map, and malformed values") {
  Shift s = shift_of("0:100000:65536", "1:200000:65535");
  CHECK(rewrite_capability(cap(VFS_CAP_REVISION_2, 0, 1, 0, std::nullopt), s, false, Unmapped::error).status ==
        Rewrite::Status::unmapped);
  CHECK(rewrite_capability("ab", s, false, Unmapped::error).status == Rewrite::Status::invalid);
  std::string v2 = cap(VFS_CAP_REVISION_2, 0, 1, 0, std::nullopt);
  CHECK(rewrite_capability(v2 + "x", s, false, Unmapped::error).status == Rewrite::Status::invalid);
}

TEST_CASE("ACL user and group entries shift through their own maps") {
  Shift s = shift_of("u:0:100000:65536,g:0:300000:65536", "u:0:200000:65536,g:0:400000:65536");
  std::string in = acl({{0x01, 7, 0xffffffff}, {0x02, 5, 100033}, {0x04, 5, 0xffffffff}, {0x08, 4, 300044},
                        {0x10, 7, 0xffffffff}, {0x20, 0, 0xffffffff}});
  auto r = rewrite_acl(in, s, false, Unmapped::error);
  REQUIRE(r.status == Rewrite::Status::changed);
  CHECK(r.value == acl({{0x01, 7, 0xffffffff}, {0x02, 5, 200033}, {0x04, 5, 0xffffffff}, {0x08, 4, 400044},
                        {0x10, 7, 0xffffffff}, {0x20, 0, 0xffffffff}}));
  // Rewriting the result again, resuming, changes nothing: the ACL step is idempotent.
  CHECK(rewrite_acl(r.value, s, true, Unmapped::error).status == Rewrite::Status::same);
  std::vector<std::uint32_t> ids;
  CHECK(for_each_acl_id(r.value, [&](bool, std::uint32_t id) { ids.push_back(id); }));
  CHECK(ids == std::vector<std::uint32_t>{200033, 400044});
}

TEST_CASE("ACL entries outside the source map: error or overflow; malformed values") {
  Shift s = shift_of("0:100000:65536", "0:200000:65536");
  auto r = rewrite_acl(acl({{0x01, 7, 0xffffffff}, {0x02, 5, 165536}}), s, false, Unmapped::error);
  CHECK(r.status == Rewrite::Status::unmapped);
  CHECK(r.problem == "ACL entry user:165536");
  auto o = rewrite_acl(acl({{0x02, 5, 165536}}), s, false, Unmapped::overflow);
  CHECK(o.value == acl({{0x02, 5, kOverflowId}}));
  CHECK(rewrite_acl(std::string("\x02\0\0\0abc", 7), s, false, Unmapped::error).status == Rewrite::Status::invalid);
  CHECK(rewrite_acl(std::string("\x01\0\0\0", 4), s, false, Unmapped::error).status == Rewrite::Status::invalid);
}
