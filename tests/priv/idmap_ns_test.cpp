// User namespaces made with given maps (root: direct writes; users: newuidmap or a
// self-only map), the census of a tree with many owners, and quarantine over a real
// store directory.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "pod/idmap/census.hpp"
#include "pod/idmap/ledger.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/sys/fs.hpp"

using namespace pod::idmap;
using pod::sys::Fd;

namespace {

int in_child(const std::function<int()>& fn) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(120);  // a hang fails the test instead of stopping the suite
    _exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int fail(int code, const std::string& what) {
  std::fprintf(stderr, "step %d: %s\n", code, what.c_str());
  return code;
}

// A /proc map file with its columns' padding squeezed: "0 100000 65536\n".
std::string read_squeezed(const char* path) {
  auto text = pod::sys::read_file(pod::sys::FdRef::cwd(), path, 1 << 16);
  if (!text) return "unreadable";
  std::string out;
  bool space = true;
  for (char c : *text) {
    if (c == ' ') {
      if (!space) out += ' ';
      space = true;
      continue;
    }
    if (c == '\n' && !out.empty() && out.back() == ' ') out.pop_back();
    out += c;
    space = c == '\n';
  }
  return out;
}

// Enters ns in a fresh child and checks what /proc/self shows there.
int check_inside(const UserNamespace& ns, const std::string& uid_map, const std::string& gid_map,
                 const char* setgroups) {
  return in_child([&] {
    if (auto r = ns.enter(); !r) return fail(20, r.error().what());
    if (auto m = read_squeezed("/proc/self/uid_map"); m != uid_map) return fail(21, "uid_map is " + m);
    if (auto m = read_squeezed("/proc/self/gid_map"); m != gid_map) return fail(22, "gid_map is " + m);
    if (auto s = read_squeezed("/proc/self/setgroups"); s != setgroups) return fail(23, "setgroups is " + s);
    return 0;
  });
}

int drop_to_nobody() {
  if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
    return fail(95, "dropping to 65534");
  prctl(PR_SET_DUMPABLE, 1);  // credential changes made /proc/self root's
  return 0;
}

std::string make_temp(const char* prefix) {
  std::string tmpl = std::string("/tmp/") + prefix + "XXXXXX";
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  REQUIRE(chmod(tmpl.c_str(), 0755) == 0);
  return tmpl;
}

void remove_temp(const std::string& path) {
  Fd tmp = *pod::sys::open_dir(pod::sys::FdRef::cwd(), "/tmp");
  CHECK(pod::sys::remove_tree(tmp, path.substr(5)));
}

// Creates dir/rel (parents made) owned uid:gid.
void owned_file(const std::string& dir, const std::string& rel, uid_t uid, gid_t gid) {
  std::string path = dir + "/" + rel;
  for (std::size_t p = path.find('/', dir.size() + 1); p != std::string::npos; p = path.find('/', p + 1))
    mkdir(path.substr(0, p).c_str(), 0755);
  Fd f(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  REQUIRE(f.valid());
  REQUIRE(fchown(f.get(), uid, gid) == 0);
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("root makes a user namespace with a lease's maps; it outlives its first process") {
    IdMap uids{{{0, 100000, 65536}}};
    IdMap gids{{{0, 100000, 65536}, {65536, 300000, 10}}};
    auto ns = UserNamespace::create(uids, gids);
    REQUIRE(ns);
    CHECK(check_inside(*ns, "0 100000 65536\n", "0 100000 65536\n65536 300000 10\n", "allow\n") == 0);
    // Malformed maps are refused before any process is made.
    auto bad = UserNamespace::create(IdMap{{{0, 100000, 10}, {5, 200000, 1}}}, gids);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message == "uid extent 5:200000:1: uid 5 in the namespace is mapped twice");
  }

  TEST_CASE("an ordinary user maps its subordinate ids through newuidmap, and is refused outside them") {
    REQUIRE(access("/usr/bin/newuidmap", X_OK) == 0);  // Debian: uidmap
    std::string ws = make_temp("pod-idmap-ns-");
    int rc = in_child([&] {
      // nobody gets 200000-265535, in files bind-mounted over /etc/sub[ug]id in a
      // private mount namespace, which newuidmap (setuid, same namespace) reads too.
      if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return fail(1, "private mount namespace");
      std::string sub = ws + "/sub";
      if (!pod::sys::write_file_atomic(*pod::sys::open_dir(pod::sys::FdRef::cwd(), ws), "sub", "nobody:200000:65536\n"))
        return fail(2, "writing the subid file");
      for (const char* f : {"/etc/subuid", "/etc/subgid"}) {
        Fd keep(open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));  // a bind target must exist
        if (mount(sub.c_str(), f, nullptr, MS_BIND, nullptr) != 0) return fail(3, std::string("bind over ") + f);
      }
      if (int r = drop_to_nobody()) return r;
      IdMap full{{{0, 65534, 1}, {1, 200000, 65536}}};
      auto ns = UserNamespace::create(full, full);
      if (!ns) return fail(4, ns.error().what());
      if (int r = check_inside(*ns, "0 65534 1\n1 200000 65536\n", "0 65534 1\n1 200000 65536\n", "allow\n")) return r;
      auto refused = UserNamespace::create(IdMap{{{0, 0, 1}}}, full);
      if (refused) return fail(5, "a map of host uid 0 was written");
      if (refused.error().message != "uid 0 on the host is not in your allotment (65534, 200000-265535)")
        return fail(6, refused.error().message);
      auto refused_g = UserNamespace::create(full, IdMap{{{0, 65534, 1}, {1, 200000, 65537}}});
      if (refused_g.error().message != "gid 265536 on the host is not in your allotment (65534, 200000-265535)")
        return fail(7, refused_g ? "written" : refused_g.error().message);
      return 0;
    });
    remove_temp(ws);
    CHECK(rc == 0);
  }

  TEST_CASE("census: every owner of a tree, symlinks by their own owner, first path per id") {
    std::string ws = make_temp("pod-idmap-census-");
    owned_file(ws, "etc/passwd", 0, 0);
    owned_file(ws, "home/u/.profile", 1000, 1000);
    owned_file(ws, "srv/data/x", 100005, 100007);
    REQUIRE(symlinkat("/etc/shadow", AT_FDCWD, (ws + "/srv/link").c_str()) == 0);
    REQUIRE(lchown((ws + "/srv/link").c_str(), 4242, 4343) == 0);
    Fd tmp = *pod::sys::open_dir(pod::sys::FdRef::cwd(), "/tmp");
    auto c = census(tmp, ws.substr(5));
    REQUIRE(c);
    CHECK(c->uid_set().str() == "0, 1000, 4242, 100005");
    CHECK(c->gid_set().str() == "0, 1000, 4343, 100007");
    CHECK(c->uids.at(100005) == "srv/data/x");
    CHECK(c->gids.at(4343) == "srv/link");
    auto hit = find_owned_by(tmp, ws.substr(5), RangeSet{{100000, 65536}}, RangeSet{});
    REQUIRE(hit);
    CHECK(*hit == "srv/data/x");
    remove_temp(ws);
  }

  TEST_CASE("release quarantines a range while files in the store's pods/ use it; list frees it after") {
    std::string store = make_temp("pod-idmap-store-");
    auto ledger = open_ledger_dir(store);
    REQUIRE(ledger);
    Fd store_fd = *pod::sys::open_dir(pod::sys::FdRef::cwd(), store);
    Allotment a;
    a.uids = a.gids = RangeSet{{100000, 131072}};
    a.block = 65536;
    AllocRequest req{"p1", std::nullopt, *Policy::parse("auto", std::nullopt)};
    auto lease = allocate(*ledger, a, req);
    REQUIRE(lease);
    CHECK(lease->uids.str() == "0:100000:65536");
    owned_file(store, "pods/1234/rootfs/etc/passwd", 0, 100000 + 5);  // only the gid is in range
    auto in_use = store_files_in_use(store_fd);
    auto r = release(*ledger, "p1", in_use);
    REQUIRE(r);
    CHECK(r->quarantined);
    CHECK(r->path == "pods/1234/rootfs/etc/passwd");
    auto next = allocate(*ledger, a, AllocRequest{"p2", std::nullopt, *Policy::parse("auto", std::nullopt)});
    REQUIRE(next);
    CHECK(next->uids.str() == "0:165536:65536");
    CHECK(refresh_leases(*ledger, in_use)->size() == 2);
    REQUIRE(chown((store + "/pods/1234/rootfs/etc/passwd").c_str(), 0, 0) == 0);
    auto listed = refresh_leases(*ledger, in_use);
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].name == "p2");
    // shifted/ counts too.
    owned_file(store, "shifted/k/bin/sh", 165536 + 1, 0);
    auto r2 = release(*ledger, "p2", in_use);
    REQUIRE(r2);
    CHECK(r2->path == "shifted/k/bin/sh");
    remove_temp(store);
  }
}

TEST_SUITE("needs:userns") {
  TEST_CASE("an unprivileged user namespace with a self-only map: written directly, setgroups denied") {
    int rc = in_child([] {
      if (geteuid() == 0)
        if (int r = drop_to_nobody()) return r;
      IdMap u{{{0, static_cast<std::uint32_t>(geteuid()), 1}}};
      IdMap g{{{0, static_cast<std::uint32_t>(getegid()), 1}}};
      auto ns = UserNamespace::create(u, g);
      if (!ns) return fail(30, ns.error().what());
      std::string want_u = "0 " + std::to_string(geteuid()) + " 1\n";
      std::string want_g = "0 " + std::to_string(getegid()) + " 1\n";
      return check_inside(*ns, want_u, want_g, "deny\n");
    });
    CHECK(rc == 0);
  }
}
