#include <doctest/doctest.h>

#include <string>

#include "pod/idmap/ranges.hpp"

using namespace pod::idmap;

TEST_CASE("range sets merge, subtract and answer with the first id") {
  RangeSet s;
  s.add(10, 20);
  s.add(20, 30);  // touching: merged
  s.add(40, 50);
  CHECK(s.intervals().size() == 2);
  CHECK(s.str() == "10-29, 40-49");
  s.add(5, 45);
  CHECK(s.str() == "5-49");
  s.subtract(10, 11);
  CHECK(s.str() == "5-9, 11-49");
  CHECK(s.size() == 44);
  CHECK(s.first_common(0, 5) == std::nullopt);
  CHECK(s.first_common(0, 6) == 5);
  CHECK(s.first_common(9, 12) == 9);
  CHECK(s.first_common(RangeSet{{0, 5}, {30, 3}}) == 30);
  CHECK(s.first_common(RangeSet{{50, 10}}) == std::nullopt);
  CHECK(s.first_missing(5, 12) == 10);
  CHECK(s.first_missing(11, 50) == std::nullopt);
  CHECK(s.first_missing(11, 51) == 50);
  CHECK(s.contains(49));
  CHECK_FALSE(s.contains(50));
  RangeSet one{{7, 1}};
  CHECK(one.str() == "7");
  CHECK(RangeSet{}.str() == "none");
}

TEST_CASE("range ends are 64-bit: the top of the id space does not wrap") {
  RangeSet s{{4294967290u, 5}};
  CHECK(s.intervals()[0].end == 4294967295ULL);
  CHECK(s.first_common(IdRange{4294967294u, 1}) == 4294967294ULL);
  CHECK(s.first_missing(IdRange{4294967290u, 5}) == std::nullopt);
  CHECK(range_end({4294967295u, 4294967295u}) == 8589934590ULL);
}

TEST_CASE("coarsening fills the narrowest gaps first, and only as many as needed") {
  RangeSet s{{0, 10}, {12, 1}, {100, 1}, {103, 1}, {1000, 5}};
  CHECK(coarsened(s, 5).str() == s.str());
  CHECK(coarsened(s, 4).str() == "0-12, 100, 103, 1000-1004");  // gap 2 (10-11)
  CHECK(coarsened(s, 3).str() == "0-12, 100-103, 1000-1004");   // then gap 2 (101-102)
  CHECK(coarsened(s, 2).str() == "0-103, 1000-1004");
  CHECK(coarsened(s, 1).str() == "0-1004");
  // Equal gaps: filled left to right until the count is reached.
  RangeSet even{{0, 1}, {2, 1}, {4, 1}, {6, 1}};
  CHECK(coarsened(even, 2).str() == "0-4, 6");
}

TEST_CASE("first fit checks every id of a candidate, not only its first") {
  RangeSet pool{{0x80000, 0x40000}};  // four blocks of 65536
  RangeSet taken;
  taken.add(0x80000 + 65535, 0x80000 + 65536);  // the last id of block 0
  CHECK(first_fit(pool, taken, 65536, 65536) == 0x90000u);
  taken.add(0x90000 + 100, 0x90000 + 101);  // the middle of block 1
  CHECK(first_fit(pool, taken, 65536, 65536) == 0xa0000u);
  // Unaligned: starts right after what is taken.
  CHECK(first_fit(pool, taken, 100, 1) == 0x80000u);
  CHECK(first_fit(pool, taken, 65536, 1) == 0x90000u + 101);
  // Nothing left.
  taken.add(0xa0000, 0xc0000);
  CHECK(first_fit(pool, taken, 65536, 65536) == std::nullopt);
  CHECK(first_fit(pool, RangeSet{}, 0x40001, 1) == std::nullopt);
}

TEST_CASE("first fit across several pool intervals aligns to each interval's start") {
  RangeSet pool{{100000, 1000}, {300000, 65536}};
  RangeSet taken{{100000, 10}};
  CHECK(first_fit(pool, taken, 1000, 1) == 300000u);
  CHECK(first_fit(pool, taken, 990, 1) == 100010u);
  CHECK(first_fit(pool, taken, 500, 500) == 100500u);
}

TEST_CASE("pick is deterministic from the name and probes onward on collision") {
  RangeSet pool{{0x80000, 0x6fffffff - 0x80000 + 1}};
  auto a = pick_fit(pool, {}, 65536, 65536, "web");
  auto b = pick_fit(pool, {}, 65536, 65536, "web");
  REQUIRE(a);
  CHECK(a == b);
  CHECK((*a - 0x80000u) % 65536 == 0);
  CHECK(*a + 65536ULL <= 0x70000000ULL);
  // Another name lands elsewhere (FNV-1a is fixed, so this is fixed too).
  auto c = pick_fit(pool, {}, 65536, 65536, "db");
  REQUIRE(c);
  CHECK(*c != *a);
  // The same block taken, even by one id at its end: the next block.
  RangeSet taken;
  taken.add(*a + 65535ULL, *a + 65536ULL);
  auto d = pick_fit(pool, taken, 65536, 65536, "web");
  REQUIRE(d);
  CHECK(*d == *a + 65536u);
  // Probing wraps from the last candidate to the first.
  RangeSet small{{0, 3 * 65536}};
  auto first = pick_fit(small, {}, 65536, 65536, "x");
  REQUIRE(first);
  RangeSet all_but_first{{0, 3 * 65536}};
  all_but_first.subtract(*first, *first + 65536ULL);
  CHECK(pick_fit(small, all_but_first, 65536, 65536, "x") == first);
  RangeSet everything{{0, 3 * 65536}};
  CHECK(pick_fit(small, everything, 65536, 65536, "x") == std::nullopt);
  // The published FNV-1a test vectors: picks stay where they were across releases.
  CHECK(name_hash("") == 0xcbf29ce484222325ULL);
  CHECK(name_hash("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("map specs: prefixes, and refusals with the reason") {
  auto m = parse_map_spec("0:100000:1000,u:1000:200000:1,g:5000:300000:2");
  REQUIRE(m);
  CHECK(m->uids.str() == "0:100000:1000,1000:200000:1");
  CHECK(m->gids.str() == "0:100000:1000,5000:300000:2");

  auto err = [](std::string_view t) {
    auto r = parse_map_spec(t);
    REQUIRE_FALSE(r);
    return r.error().message;
  };
  CHECK(err("0:100000") == "map extent '0:100000' is not [u:|g:]CONTAINER:HOST:COUNT in decimal");
  CHECK(err("0:-1:5") == "map extent '0:-1:5' is not [u:|g:]CONTAINER:HOST:COUNT in decimal");
  CHECK(err("0:0x10:5") == "map extent '0:0x10:5' is not [u:|g:]CONTAINER:HOST:COUNT in decimal");
  CHECK(err("0:99999999999:1") == "map extent '0:99999999999:1' is not [u:|g:]CONTAINER:HOST:COUNT in decimal");
  CHECK(err("0:100000:0") == "map extent '0:100000:0': count is 0");
  CHECK(err("0:4294967290:6") == "map extent '0:4294967290:6': ids past 4294967294");
  CHECK(parse_map_spec("0:4294967290:5"));  // ends at 4294967294, the last mappable id
  CHECK(err("u:0:100000:10") == "map 'u:0:100000:10' maps no gids (add an extent without a prefix or with g:)");
  CHECK(err("0:100000:10,5:200000:10") ==
        "map '0:100000:10,5:200000:10': uid extent 5:200000:10: uid 5 in the namespace is mapped twice");
  CHECK(err("0:100000:10,u:20:100009:1,g:20:1:1") ==
        "map '0:100000:10,u:20:100009:1,g:20:1:1': uid extent 20:100009:1: uid 100009 on the host is mapped twice");
  CHECK(err("") == "map extent '' is not [u:|g:]CONTAINER:HOST:COUNT in decimal");
}

TEST_CASE("map shape: extent limit and emptiness") {
  IdMap m;
  CHECK(check_map_shape(m, IdKind::gid).error().message == "the gid map is empty");
  for (std::uint32_t i = 0; i < 341; ++i) m.extents.push_back({i, 100000 + i, 1});
  CHECK(check_map_shape(m, IdKind::uid).error().message == "the uid map has 341 extents; the kernel takes at most 340");
  m.extents.resize(340);
  CHECK(check_map_shape(m, IdKind::uid));
}
