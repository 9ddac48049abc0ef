// Map arithmetic of the shift engine: extents, edges, overlap, the namespace view.
#include <doctest/doctest.h>

#include "pod/shift/idshift.hpp"

using namespace pod::shift;
using pod::idmap::IdKind;
using pod::idmap::parse_map_spec;

namespace {
pod::idmap::MapSpec spec(const char* text) {
  auto s = parse_map_spec(text);
  REQUIRE(s);
  return *s;
}
using V = KindShift::Verdict;
}  // namespace

TEST_CASE("several extents map through the inner id, edges included") {
  auto s = make_shift(spec("0:100000:1000,1000:300000:64536"), spec("0:200000:65536"));
  REQUIRE(s);
  auto& u = s->uids;
  CHECK(u.map(100000, false).verdict == V::shift);
  CHECK(u.map(100000, false).id == 200000);
  CHECK(u.map(100999, false).id == 200999);   // last of the first extent
  CHECK(u.map(300000, false).id == 201000);   // first of the second
  CHECK(u.map(364535, false).id == 265535);   // last of the second
  CHECK(u.map(364536, false).verdict == V::unmapped);  // just outside
  CHECK(u.map(99999, false).verdict == V::unmapped);
  CHECK(u.map(101000, false).verdict == V::unmapped);  // the gap between extents
  CHECK(s->source_root == 100000u);
  CHECK(s->target_root == 200000u);
}

TEST_CASE("ids in the target map are done only when resuming") {
  auto s = make_shift(spec("0:100000:65536"), spec("0:200000:65536"));
  REQUIRE(s);
  CHECK(s->uids.map(200005, true).verdict == V::done);
  CHECK(s->uids.map(200005, true).id == 200005);
  CHECK(s->uids.map(200005, false).verdict == V::unmapped);
  CHECK(s->uids.map(265536, true).verdict == V::unmapped);
}

TEST_CASE("a source inner id the target lacks is unmapped, never wrapped") {
  auto s = make_shift(spec("0:100000:65536"), spec("0:200000:1000"));
  REQUIRE(s);
  CHECK(s->uids.map(100999, false).id == 200999);
  CHECK(s->uids.map(101000, false).verdict == V::unmapped);
  // An extent at the top of the id space: no arithmetic past 2^32.
  auto top = make_shift(spec("0:4294900000:67294"), spec("0:100000:67294"));
  REQUIRE(top);
  CHECK(top->uids.map(4294967293u, false).id == 167293);
  CHECK(top->uids.map(4294967294u, false).verdict == V::unmapped);
}

TEST_CASE("uids and gids shift separately") {
  auto s = make_shift(spec("u:0:100000:10,g:0:110000:10"), spec("u:0:200000:10,g:5:210000:5"));
  REQUIRE(s);
  CHECK(s->uids.map(100003, false).id == 200003);
  CHECK(s->gids.map(110003, false).verdict == V::unmapped);  // inner 3 is not in the target's gids
  CHECK(s->gids.map(110007, false).id == 210002);
}

TEST_CASE("overlapping host ranges are refused with the id") {
  auto s = make_shift(spec("0:100000:65536"), spec("0:150000:65536"));
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find("share host uid 150000") != std::string::npos);
  auto g = make_shift(spec("u:0:100000:10,g:0:100000:10"), spec("u:0:200000:10,g:0:100005:10"));
  REQUIRE_FALSE(g);
  CHECK(g.error().message.find("share host gid 100005") != std::string::npos);
}

TEST_CASE("host ids seen through the store's namespace") {
  // The store maps the user (1000) to 0 and 400000..465535 to 1..65536.
  auto ns = spec("0:1000:1,1:400000:65536").uids;
  auto m = view_through(spec("0:400000:100,100:1000:1").uids, ns, IdKind::uid);
  REQUIRE(m);
  CHECK(m->str() == "0:1:100,100:0:1");
  // Crossing from one namespace extent to the next splits the extent.
  auto ns2 = spec("0:1000:1,1:400000:10,11:500000:10").uids;
  auto split = view_through(spec("0:400005:10").uids, ns2, IdKind::uid);
  CHECK_FALSE(split);  // 400010.. is not mapped
  CHECK(split.error().message == "uid 400010 on the host is not mapped in your user namespace (0:1000:1,1:400000:10,11:500000:10)");
  auto ns3 = spec("0:1000:1,1:400000:10,11:400010:10").uids;
  auto ok = view_through(spec("0:400005:10").uids, ns3, IdKind::uid);
  REQUIRE(ok);
  CHECK(ok->str() == "0:6:5,5:11:5");
}

TEST_CASE("canonical text sorts extents and merges equal kinds") {
  CHECK(canonical_text(spec("5:105:5,0:100:5")) == "0:100:5,5:105:5");
  CHECK(canonical_text(spec("u:0:100:5,g:0:200:5")) == "u:0:100:5,g:0:200:5");
  CHECK(canonical_text(spec("u:0:100:5,g:0:100:5")) == "0:100:5");
}
