#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pod/idmap/namespace.hpp"

using namespace pod::idmap;

namespace {

MapAllowance alice() {
  MapAllowance a;
  a.own_uid = 1000;
  a.own_gid = 1000;
  a.uids = RangeSet{{1000, 1}, {100000, 65536}};
  a.gids = RangeSet{{1000, 1}, {100000, 65536}};
  return a;
}

IdMap map(std::vector<Extent> e) { return IdMap{std::move(e)}; }

}  // namespace

TEST_CASE("a map outside the allotment is refused before anything is written") {
  auto r = plan_maps(42, map({{0, 0, 1}}), map({{0, 1000, 1}}), MapWriter::helper, alice());
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "uid 0 on the host is not in your allotment (1000, 100000-165535)");
  auto g = plan_maps(42, map({{0, 1000, 1}}), map({{0, 100000, 65537}}), MapWriter::helper, alice());
  CHECK(g.error().message == "gid 165536 on the host is not in your allotment (1000, 100000-165535)");
  auto shape = plan_maps(42, map({{0, 100000, 10}, {5, 100020, 1}}), map({{0, 1000, 1}}), MapWriter::helper, alice());
  CHECK(shape.error().message == "uid extent 5:100020:1: uid 5 in the namespace is mapped twice");
  // Root writes directly: any host id, shape still checked.
  CHECK(plan_maps(42, map({{0, 0, 1}}), map({{0, 0, 1}}), MapWriter::direct, alice()));
  CHECK_FALSE(plan_maps(42, map({{0, 0, 0}}), map({{0, 0, 1}}), MapWriter::direct, alice()));
}

TEST_CASE("users: newuidmap/newgidmap with the extents; a self-only gid map denies setgroups") {
  auto p = plan_maps(42, map({{0, 1000, 1}, {1, 100000, 65536}}), map({{0, 1000, 1}}), MapWriter::helper, alice());
  REQUIRE(p);
  CHECK(p->uid_helper == std::vector<std::string>{"newuidmap", "42", "0", "1000", "1", "1", "100000", "65536"});
  CHECK(p->gid_helper.empty());
  CHECK(p->setgroups_deny);
  CHECK(p->gid_text == "0 1000 1\n");

  auto q = plan_maps(7, map({{0, 1000, 1}}), map({{0, 100000, 65536}}), MapWriter::helper, alice());
  REQUIRE(q);
  CHECK(q->uid_helper.empty());
  CHECK(q->gid_helper == std::vector<std::string>{"newgidmap", "7", "0", "100000", "65536"});
  CHECK_FALSE(q->setgroups_deny);

  auto root = plan_maps(7, map({{0, 100000, 65536}}), map({{0, 1000, 1}}), MapWriter::direct, alice());
  REQUIRE(root);
  CHECK(root->uid_helper.empty());
  CHECK(root->gid_helper.empty());
  CHECK_FALSE(root->setgroups_deny);
  CHECK(root->uid_text == "0 100000 65536\n");
  CHECK(is_self_only(map({{5, 1000, 1}}), 1000));
  CHECK_FALSE(is_self_only(map({{0, 1000, 2}}), 1000));
}
