#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "pod/idmap/allotment.hpp"
#include "pod/idmap/ledger.hpp"
#include "pod/sys/fs.hpp"

using namespace pod::idmap;
using pod::sys::Fd;

namespace {

HostIds sample_host() {
  HostIds h;
  h.subuid = parse_subid("alice:100000:65536\nbob:700000:65536\ncontainers:1000000:262144\n", "/etc/subuid", nullptr);
  h.subgid = parse_subid("alice:100000:65536\nbob:700000:65536\ncontainers:1000000:262144\n", "/etc/subgid", nullptr);
  h.users = {{0, "root"}, {1000, "alice"}, {1001, "bob"}, {0x80000 + 5, "svc"}, {1100000, "late"}};
  h.groups = {{0, "root"}, {1000, "alice"}, {0x90000 + 65535, "svcgroup"}};
  return h;
}

AllocRequest req(std::string name, std::string policy, std::optional<std::uint64_t> size = std::nullopt) {
  auto p = Policy::parse(policy, size);
  REQUIRE(p);
  return AllocRequest{std::move(name), std::nullopt, *p};
}

Lease leased(std::string name, std::uint32_t host, std::uint32_t count, LeaseState st = LeaseState::leased) {
  Lease l;
  l.name = std::move(name);
  l.uids.extents = {{0, host, count}};
  l.gids.extents = {{0, host, count}};
  l.state = st;
  return l;
}

std::string refusal(const std::vector<Lease>& others, const Allotment& a, const AllocRequest& r) {
  auto l = choose_lease(others, a, r);
  REQUIRE_FALSE(l);
  return l.error().message;
}

struct TempDir {
  std::string path;
  Fd fd;
  TempDir() {
    Fd tmp = *pod::sys::open_dir(pod::sys::FdRef::cwd(), "/tmp");
    auto name = pod::sys::make_temp_dir(tmp, "pod-idmap-unit-");
    REQUIRE(name);
    path = "/tmp/" + *name;
    fd = *pod::sys::open_dir(pod::sys::FdRef::cwd(), path);
  }
  ~TempDir() {
    Fd tmp = *pod::sys::open_dir(pod::sys::FdRef::cwd(), "/tmp");
    (void)pod::sys::remove_tree(tmp, path.substr(5));
  }
};

}  // namespace

TEST_CASE("policies and names parse, with reasons") {
  CHECK(Policy::parse("auto", std::nullopt)->size == 65536);
  CHECK(Policy::parse("auto", 1000)->size == 1000);
  CHECK(Policy::parse("auto:size=4096", 1000)->size == 4096);
  CHECK(Policy::parse("pick", std::nullopt)->kind == Policy::Kind::pick);
  CHECK(Policy::parse("0:100000:10", std::nullopt)->kind == Policy::Kind::map);
  CHECK(Policy::parse("0:100000:10", 10).error().message ==
        "a size does not go with an explicit map: its extents give the sizes");
  CHECK(Policy::parse("auto:size=0", std::nullopt).error().message == "size 0 is not between 1 and 2147483648");
  CHECK(Policy::parse("auto:size=x", std::nullopt).error().message == "size 'x' is not a decimal number");
  CHECK(Policy::parse("best", std::nullopt).error().message ==
        "policy 'best' is not auto, auto:size=N, pick or a map CONTAINER:HOST:COUNT[,...]");
  CHECK(check_lease_name("p1"));
  CHECK(check_lease_name(std::string(63, 'a')));
  CHECK_FALSE(check_lease_name(std::string(64, 'a')));
  CHECK_FALSE(check_lease_name("-p"));
  CHECK_FALSE(check_lease_name("P1"));
  CHECK_FALSE(check_lease_name(""));
  CHECK(check_lease_name("a/b").error().message == "name 'a/b' is not [a-z0-9][a-z0-9-]{0,62}");
}

TEST_CASE("an ordinary user's allotment is their own subordinate ranges") {
  auto a = user_allotment(sample_host(), "alice", 1000);
  REQUIRE(a);
  CHECK(a->uids.str() == "100000-165535");
  CHECK(a->reserved.empty());
  auto byuid = user_allotment(sample_host(), "nobody-by-name", 1001);  // numeric owner absent: none
  REQUIRE_FALSE(byuid);
  CHECK(byuid.error().message.starts_with("user 'nobody-by-name' has no subordinate uids in /etc/subuid"));

  auto l1 = choose_lease({}, *a, req("a1", "auto", 1000));
  REQUIRE(l1);
  CHECK(l1->uids.str() == "0:100000:1000");
  CHECK(l1->gids.str() == "0:100000:1000");
  auto l2 = choose_lease({*l1}, *a, req("a2", "auto", 1000));
  REQUIRE(l2);
  CHECK(l2->uids.str() == "0:101000:1000");
  CHECK(refusal({*l1, *l2}, *a, req("a3", "auto", 65536)) ==
        "no free range of 65536 uids in the subordinate ids of 'alice' (100000-165535; 63536 of them free)");
}

TEST_CASE("explicit maps are refused with the first offending id and why") {
  auto a = user_allotment(sample_host(), "alice", 1000);
  REQUIRE(a);
  CHECK(refusal({}, *a, req("m", "0:0:1")) == "uid 0 on the host is not in your allotment (100000-165535)");
  CHECK(refusal({}, *a, req("m", "0:165000:1000")) == "uid 165536 on the host is not in your allotment (100000-165535)");
  CHECK(refusal({}, *a, req("m", "u:0:100000:10,g:0:99999:10")) ==
        "gid 99999 on the host is not in your allotment (100000-165535)");
  std::vector<Lease> others{leased("web", 100000, 1000), leased("old", 120000, 10, LeaseState::quarantined)};
  // The overlap is at the candidate's last id, not its first.
  CHECK(refusal(others, *a, req("m", "0:99000:1001")) == "uid 99000 on the host is not in your allotment (100000-165535)");
  CHECK(refusal(others, *a, req("m", "0:110000:10,10:100999:1")) == "uid 100999 on the host is leased to 'web'");
  CHECK(refusal(others, *a, req("m", "0:119000:2000")) ==
        "uid 120000 on the host is quarantined: files owned by the released lease 'old' remain");
  CHECK(refusal(others, *a, req("web", "auto")) == "a lease named 'web' exists (leased)");
  auto ok = choose_lease(others, *a, req("m", "0:101000:1000,u:1000:130000:1"));
  REQUIRE(ok);
  CHECK(ok->uids.str() == "0:101000:1000,1000:130000:1");
  CHECK(ok->gids.str() == "0:101000:1000");
}

TEST_CASE("root's pool: the containers user's ranges, reservations named") {
  auto a = root_allotment(sample_host(), std::nullopt);
  REQUIRE(a);
  CHECK(a->uids.str() == "1000000-1262143");
  CHECK(a->source == "the subordinate ids of 'containers'");
  // "late" (uid 1100000) sits in the pool's second block: auto skips that block.
  auto l1 = choose_lease({}, *a, req("r1", "auto"));
  REQUIRE(l1);
  CHECK(l1->uids.str() == "0:1000000:65536");
  auto l2 = choose_lease({*l1}, *a, req("r2", "auto"));
  REQUIRE(l2);
  CHECK(l2->uids.str() == "0:1131072:65536");
  CHECK(l2->gids.str() == "0:1065536:65536");
  CHECK(refusal({}, *a, req("m", "0:1100000:1")) == "uid 1100000 on the host belongs to user 'late'");
  CHECK(refusal({}, *a, req("m", "0:700000:1")) ==
        "uid 700000 on the host is not in your allotment (1000000-1262143)");
}

TEST_CASE("root's default pool and pool.json; other users' ranges and ids reserved") {
  HostIds h = sample_host();
  h.subuid.pop_back();  // no containers user
  h.subgid.pop_back();
  h.subuid.push_back({"carol", {0x80000 + 65536, 10}, 9});
  auto a = root_allotment(h, std::nullopt);
  REQUIRE(a);
  CHECK(a->uids.str() == "524288-1879048191");
  CHECK(a->block == 65536);
  // uids: block 0 holds svc's uid (0x80005), block 1 carol's subuids, blocks 2 and 3
  // bob's (700000-765535). gids: block 1 holds svcgroup's gid, 2 and 3 bob's.
  auto l = choose_lease({}, *a, req("r", "auto"));
  REQUIRE(l);
  CHECK(l->uids.str() == fmt::format("0:{}:65536", 0x80000 + 4 * 65536));
  CHECK(l->gids.str() == fmt::format("0:{}:65536", 0x80000));
  CHECK(refusal({}, *a, req("m", "0:589824:65536")) ==
        "uid 589824 on the host is in the subordinate range of 'carol' in /etc/subuid");
  CHECK(refusal({}, *a, req("m", "0:1000:1")) == "uid 1000 on the host is not in your allotment (524288-1879048191)");
  CHECK(refusal({}, *a, req("m", "u:0:2000000:10,g:0:655359:1")) == "gid 655359 on the host belongs to group 'svcgroup'");

  auto c = root_allotment(h, std::string(R"({"uids": [{"host": 3000000, "count": 131072}], "block": 1000})"));
  REQUIRE(c);
  CHECK(c->gids.str() == "3000000-3131071");
  CHECK(c->block == 1000);
  CHECK(choose_lease({}, *c, req("r", "auto", 10))->uids.str() == "0:3000000:10");
  CHECK(choose_lease({leased("x", 3000000, 10)}, *c, req("r", "auto", 10))->uids.str() == "0:3001000:10");
  CHECK(root_allotment(h, std::string("{}")).error().message == "pool.json has no 'uids'");
  CHECK(root_allotment(h, std::string(R"({"uids": [{"host": 4294967290, "count": 10}]})")).error().message ==
        "pool.json: 'uids' range 4294967290+10 is empty or ends past 4294967294");
}

TEST_CASE("auto over a census: each covered range an extent, side by side on one free host range") {
  auto a = root_allotment(sample_host(), std::nullopt);
  REQUIRE(a);
  AllocRequest r = req("wide", "auto");
  r.policy.cover_uids = RangeSet{{0, 65536}, {70000, 1}, {100000, 10}};
  r.policy.cover_gids = RangeSet{{0, 65536}};
  auto l = choose_lease({}, *a, r);
  REQUIRE(l);
  CHECK(l->uids.str() == "0:1000000:65536,70000:1065536:1,100000:1065537:10");
  CHECK(l->gids.str() == "0:1000000:65536");
  // The next lease starts past every id of this one (the next 65536 block).
  auto next = choose_lease({*l}, *a, req("next", "auto"));
  REQUIRE(next);
  CHECK(next->uids.str() == "0:1131072:65536");
  RangeSet many;
  for (std::uint64_t i = 0; i < 341; ++i) many.add(i * 2, i * 2 + 1);
  r.policy.cover_uids = many;
  CHECK(refusal({}, *a, r) == "the uids to map form 341 ranges; a user namespace holds at most 340");
}

TEST_CASE("pick through the ledger: same name, same range; taken, the next block") {
  HostIds h;
  auto a = root_allotment(h, std::nullopt);
  REQUIRE(a);
  auto p1 = choose_lease({}, *a, req("web", "pick"));
  REQUIRE(p1);
  auto again = choose_lease({}, *a, req("web", "pick"));
  CHECK(again->uids.str() == p1->uids.str());
  Lease squatter = leased("squat", p1->uids.extents[0].outer + 65535, 1);
  auto p2 = choose_lease({squatter}, *a, req("web", "pick"));
  REQUIRE(p2);
  CHECK(p2->uids.extents[0].outer == p1->uids.extents[0].outer + 65536);
}

TEST_CASE("ledger file: allocate, release into quarantine, free on refresh") {
  TempDir t;
  auto a = user_allotment(sample_host(), "alice", 1000);
  REQUIRE(a);
  auto l1 = allocate(t.fd, *a, req("p1", "auto", 1000));
  REQUIRE(l1);
  CHECK(l1->created.size() == 20);
  auto l2 = allocate(t.fd, *a, req("p2", "auto", 1000));
  REQUIRE(l2);
  CHECK(l2->uids.str() == "0:101000:1000");
  CHECK(allocate(t.fd, *a, req("p1", "auto", 1000)).error().code == EEXIST);

  std::optional<std::string> remaining = "pods/x/etc/passwd";
  InUse in_use = [&](const Lease& l) -> pod::sys::Result<std::optional<std::string>> {
    if (l.name == "p1") return remaining;
    return std::nullopt;
  };
  auto r1 = release(t.fd, "p1", in_use);
  REQUIRE(r1);
  CHECK(r1->quarantined);
  CHECK(r1->path == "pods/x/etc/passwd");
  auto r2 = release(t.fd, "p2", in_use);
  REQUIRE(r2);
  CHECK_FALSE(r2->quarantined);
  CHECK(release(t.fd, "p2", in_use).error().message == "no lease named 'p2'");

  auto listed = read_leases(t.fd);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].state == LeaseState::quarantined);
  // The quarantined range is not handed out; p2's freed one is.
  auto l3 = allocate(t.fd, *a, req("p3", "auto", 1000));
  REQUIRE(l3);
  CHECK(l3->uids.str() == "0:101000:1000");
  // Still in use: refresh keeps it. Gone: refresh frees it and the next lease gets it.
  CHECK(refresh_leases(t.fd, in_use)->size() == 2);
  remaining.reset();
  auto after = refresh_leases(t.fd, in_use);
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].name == "p3");
  CHECK(allocate(t.fd, *a, req("p4", "auto", 1000))->uids.str() == "0:100000:1000");
}

TEST_CASE("ledger text round-trips; a damaged ledger is refused, not overwritten") {
  Lease l = leased("x", 100000, 5);
  l.pod = "0f8fad5b-d9cb-469f-a165-70867728950e";
  l.created = "2026-01-01T00:00:00Z";
  auto back = leases_from_text(leases_to_text({l}));
  REQUIRE(back);
  REQUIRE(back->size() == 1);
  CHECK((*back)[0].pod == l.pod);
  CHECK((*back)[0].uids.str() == "0:100000:5");
  CHECK(leases_from_text("{").error().message ==
        "the ledger 'leases.json' is damaged: not a JSON object; fix or remove it by hand");
  CHECK(leases_from_text(R"({"version": 1, "leases": [{"name": "a", "uid_map": [[0, 4294967295, 1]],
        "gid_map": [], "state": "leased"}]})").error().message ==
        "the ledger 'leases.json' is damaged: lease 'a': uid extent 0:4294967295:1: ids past 4294967294; "
        "fix or remove it by hand");

  TempDir t;
  REQUIRE(pod::sys::write_file_atomic(t.fd, "leases.json", "garbage"));
  auto a = user_allotment(sample_host(), "alice", 1000);
  CHECK(allocate(t.fd, *a, req("p", "auto")).error().code == EINVAL);
  CHECK(*pod::sys::read_file(t.fd, "leases.json", 100) == "garbage");
}
