// STORE/pods: making a pod directory, the state read from lock and record, finding a
// pod, removing it and collecting garbage.
#include <doctest/doctest.h>

#include <map>

#include "pods_support.hpp"

namespace pod::runtime::test {

namespace {

const std::string kA = "aaaa1111-0000-4000-8000-000000000001";
const std::string kB = "aaaa2222-0000-4000-8000-000000000002";
const std::string kC = "cccc3333-0000-4000-8000-000000000003";

PodInfo find_ok(const TempDir& store, const std::string& which) {
  auto p = find_pod(open_store(store), which);
  REQUIRE_MESSAGE(p, p.error().what());
  return *p;
}

}  // namespace

TEST_CASE("PodDir::create makes the directory, holds the lock and writes the record") {
  TempDir store;
  PodRecord r = sample_record(new_uuid(), "web");
  std::string dir = store / ("pods/" + r.uuid);
  {
    auto pd = PodDir::create(open_store(store), r);
    REQUIRE_MESSAGE(pd, pd.error().what());
    struct stat st;
    REQUIRE(::stat((store / "pods").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat((dir + "/rootfs").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755);
    for (auto sub : {"upper", "work", "ns"}) CHECK(sys::test::lexists(dir + "/" + sub));
    // Nothing left under the staging name.
    CHECK(sys::test::names_in(store / "pods") == std::set<std::string>{r.uuid});
    auto back = record_from_json(sys::test::slurp(dir + "/pod.json"));
    REQUIRE(back);
    CHECK(back->name == "web");

    // Being prepared by a live `pod run`: the lock is held, no pid yet.
    PodInfo p = find_ok(store, "web");
    CHECK(p.locked);
    CHECK(p.state == PodState::prepared);
    int fd = ::open((dir + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(::flock(fd, LOCK_EX | LOCK_NB) != 0);
    ::close(fd);

    r.pid = ::getpid();
    REQUIRE(pd->write_record(r));
    CHECK(find_ok(store, "web").state == PodState::running);
    // Creating it twice is refused.
    CHECK_FALSE(PodDir::create(open_store(store), r));
  }
  // The lock went with the object; the pod had started: exited.
  PodInfo p = find_ok(store, "web");
  CHECK_FALSE(p.locked);
  CHECK(p.state == PodState::exited);
  CHECK_FALSE(p.exit.has_value());
}

TEST_CASE("state: running while the lock is held, exited after, prepared without pid") {
  TempDir store;
  PodRecord started = sample_record(kA, "started");
  started.pid = 12345;
  std::string dir = make_pod_dir(store, started);
  make_pod_dir(store, sample_record(kC, "never"));

  {
    LockHolder init(dir);
    CHECK(find_ok(store, "started").state == PodState::running);
    CHECK(find_ok(store, "started").locked);
  }
  PodInfo p = find_ok(store, "started");
  CHECK(p.state == PodState::exited);
  CHECK_FALSE(p.exit.has_value());
  sys::test::put_file(dir + "/status.json", R"({"exit": 3, "apps": [{"name": "main", "exit": 3, "signal": 0}]})");
  p = find_ok(store, "started");
  REQUIRE(p.exit.has_value());
  CHECK(p.exit->exit == 3);
  CHECK(find_ok(store, "never").state == PodState::prepared);
  CHECK(std::string(state_name(PodState::exited)) == "exited");
}

TEST_CASE("list_pods: oldest first, a damaged record reported and skipped") {
  TempDir store;
  auto empty = list_pods(open_store(store), nullptr);
  REQUIRE(empty);  // no pods directory yet
  CHECK(empty->empty());

  PodRecord a = sample_record(kA, "second");
  a.created = "2025-02-01T00:00:00Z";
  PodRecord c = sample_record(kC, "first");
  c.created = "2025-01-01T00:00:00Z";
  make_pod_dir(store, a);
  make_pod_dir(store, c);
  std::string bad = make_pod_dir(store, sample_record(kB, "broken"));
  sys::test::put_file(bad + "/pod.json", R"({"version": 1, "uuid": 5})");
  sys::test::put_dir(store / "pods/not-a-pod");

  std::vector<std::string> damaged;
  auto pods = list_pods(open_store(store), &damaged);
  REQUIRE(pods);
  REQUIRE(pods->size() == 2);
  CHECK((*pods)[0].record.name == "first");
  CHECK((*pods)[1].record.name == "second");
  REQUIRE(damaged.size() == 1);
  CHECK(damaged[0].find(kB) != std::string::npos);
  CHECK(damaged[0].find("'uuid'") != std::string::npos);

  // By uuid, a damaged pod is found (so that `pod rm` can remove it), marked.
  PodInfo p = find_ok(store, kB);
  CHECK_FALSE(p.damaged.empty());
  CHECK(p.record.uuid == kB);
}

TEST_CASE("find_pod: by name, full uuid, unique prefix; ambiguous and missing are errors") {
  TempDir store;
  make_pod_dir(store, sample_record(kA, "web"));
  make_pod_dir(store, sample_record(kB, "db"));
  make_pod_dir(store, sample_record(kC, "cache"));

  CHECK(find_ok(store, "web").record.uuid == kA);
  CHECK(find_ok(store, kB).record.name == "db");
  CHECK(find_ok(store, "cccc").record.name == "cache");
  CHECK(find_ok(store, "aaaa2").record.name == "db");

  auto amb = find_pod(open_store(store), "aaaa");
  REQUIRE(!amb);
  CHECK(amb.error().message.rfind("'aaaa' matches 2 pods: ", 0) == 0);
  CHECK(amb.error().message.find(kA + " (web)") != std::string::npos);
  CHECK(amb.error().message.find(kB + " (db)") != std::string::npos);

  auto none = find_pod(open_store(store), "nosuch");
  REQUIRE(!none);
  CHECK(none.error().code == ENOENT);
  CHECK(none.error().message == "no pod 'nosuch'");
  // A prefix shorter than 4 characters does not match.
  CHECK_FALSE(find_pod(open_store(store), "ccc"));

  // Two pods with one name (only a broken `pod run` makes that): both named.
  make_pod_dir(store, sample_record("dddd4444-0000-4000-8000-000000000004", "web"));
  auto two = find_pod(open_store(store), "web");
  REQUIRE(!two);
  CHECK(two.error().message.find("matches 2 pods") != std::string::npos);
}

TEST_CASE("find_pod_by_uuid: that pod only; a missing uuid or a name is an error") {
  TempDir store;
  make_pod_dir(store, sample_record(kA, "web"));
  make_pod_dir(store, sample_record(kB, kA));  // a name that looks like the other's uuid
  auto a = find_pod_by_uuid(open_store(store), kA);
  REQUIRE_MESSAGE(a, a.error().what());
  CHECK(a->record.name == "web");
  CHECK(a->damaged.empty());
  auto missing = find_pod_by_uuid(open_store(store), kC);
  REQUIRE(!missing);
  CHECK(missing.error().code == ENOENT);
  CHECK(missing.error().message == "no pod '" + kC + "'");
  auto name = find_pod_by_uuid(open_store(store), "web");
  REQUIRE(!name);
  CHECK(name.error().code == EINVAL);
}

TEST_CASE("remove_pod refuses a running pod and removes an exited one") {
  TempDir store;
  PodRecord r = sample_record(kA, "web");
  r.pid = 999999;
  std::string dir = make_pod_dir(store, r);
  CountingReleasers rel;
  {
    LockHolder init(dir);
    auto res = remove_pod(open_store(store), find_ok(store, "web"), rel.get());
    REQUIRE(!res);
    CHECK(res.error().code == EBUSY);
    CHECK(res.error().message == "pod web (" + kA + ") is running: stop it first");
    CHECK(sys::test::lexists(dir + "/upper/file"));
    CHECK(rel.lease.empty());
  }
  PodInfo p = find_ok(store, "web");
  auto res = remove_pod(open_store(store), p, rel.get());
  REQUIRE_MESSAGE(res, res.error().what());
  CHECK(sys::test::names_in(store / "pods").empty());
  CHECK(rel.lease == std::map<std::string, int>{{kA, 1}});
  CHECK(rel.shifted == std::map<std::string, int>{{kA, 1}});
  CHECK_FALSE(find_pod(open_store(store), "web"));
  // Removing it again: no such pod.
  auto again = remove_pod(open_store(store), p, rel.get());
  REQUIRE(!again);
  CHECK(again.error().code == ENOENT);
}

TEST_CASE("remove_pod: a release that fails leaves garbage that gc finishes") {
  TempDir store;
  PodRecord r = sample_record(kA, "web");
  r.pid = 999999;
  make_pod_dir(store, r);
  CountingReleasers rel;
  rel.fail_lease = true;
  auto res = remove_pod(open_store(store), find_ok(store, "web"), rel.get());
  REQUIRE(!res);
  CHECK(res.error().message.find("ledger unavailable") != std::string::npos);
  // Gone from the list at once; only its record is left, under the garbage name.
  CHECK_FALSE(find_pod(open_store(store), "web"));
  CHECK(sys::test::names_in(store / ("pods/.garbage-" + kA)) == std::set<std::string>{"pod.json"});

  rel.fail_lease = false;
  auto gc = gc_pods(open_store(store), rel.get());
  REQUIRE_MESSAGE(gc, gc.error().what());
  CHECK(*gc == std::vector<std::string>{kA});
  CHECK(sys::test::names_in(store / "pods").empty());
  CHECK(rel.lease == std::map<std::string, int>{{kA, 1}});
  CHECK(rel.shifted == std::map<std::string, int>{{kA, 1}});
}

TEST_CASE("gc removes exited, garbage and abandoned pods; keeps running and fresh prepared ones") {
  TempDir store;
  PodRecord exited = sample_record(kA, "exited");
  exited.pid = 999999;
  make_pod_dir(store, exited);
  PodRecord running = sample_record(kB, "running");
  running.pid = 999998;
  std::string running_dir = make_pod_dir(store, running);
  std::string old_dir = make_pod_dir(store, sample_record(kC, "abandoned"));
  age_file(old_dir + "/pod.json", 120);
  const std::string fresh = "eeee5555-0000-4000-8000-000000000005";
  make_pod_dir(store, sample_record(fresh, "fresh"));
  // Garbage left by a killed `pod rm`, with and without a record.
  const std::string g1 = "ffff6666-0000-4000-8000-000000000006", g2 = "ffff7777-0000-4000-8000-000000000007";
  std::string gdir = make_pod_dir(store, sample_record(g1, "gone"));
  REQUIRE(::rename(gdir.c_str(), (store / ("pods/.garbage-" + g1)).c_str()) == 0);
  sys::test::put_dir(store / ("pods/.garbage-" + g2));
  sys::test::put_file(store / ("pods/.garbage-" + g2 + "/junk"), "x");
  // A damaged pod is left for `pod rm UUID`.
  const std::string dmg = "9999aaaa-0000-4000-8000-000000000008";
  std::string ddir = make_pod_dir(store, sample_record(dmg, "damaged"));
  sys::test::put_file(ddir + "/pod.json", "{");
  age_file(ddir + "/pod.json", 120);

  LockHolder init(running_dir);
  CountingReleasers rel;
  auto gc = gc_pods(open_store(store), rel.get());
  REQUIRE_MESSAGE(gc, gc.error().what());
  std::set<std::string> removed(gc->begin(), gc->end());
  CHECK(removed == std::set<std::string>{kA, kC, g1, g2});
  CHECK(sys::test::names_in(store / "pods") == std::set<std::string>{kB, fresh, dmg});
  // Once per removed pod that had a record.
  CHECK(rel.lease == std::map<std::string, int>{{kA, 1}, {kC, 1}, {g1, 1}});
  CHECK(rel.shifted == std::map<std::string, int>{{kA, 1}, {kC, 1}, {g1, 1}});

  // A second gc finds nothing more and releases nothing again.
  auto again = gc_pods(open_store(store), rel.get());
  REQUIRE(again);
  CHECK(again->empty());
  CHECK(rel.lease.size() == 3);

  // A damaged pod goes by `pod rm UUID`, releasing nothing (its record is unreadable).
  auto res = remove_pod(open_store(store), find_ok(store, dmg), rel.get());
  REQUIRE_MESSAGE(res, res.error().what());
  CHECK_FALSE(sys::test::lexists(ddir));
  CHECK(rel.lease.size() == 3);
}

}  // namespace pod::runtime::test
