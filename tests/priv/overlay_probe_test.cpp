// The probes on this machine: everything works for root; an ordinary user cannot
// idmap the disk; the per-boot cache is used, and replaced when damaged or old.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "pod/overlay/probe.hpp"
#include "pod/sys/fs.hpp"
#include "child_steps.hpp"

using pod::sys::Fd;
using pod::sys::FdRef;
using namespace pod::overlay;

namespace {

struct TempDir {
  std::string path;
  Fd fd;
  TempDir() {
    char t[] = "/tmp/pod-probe-test.XXXXXX";
    path = mkdtemp(t);
    fd = Fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  ~TempDir() {
    auto parent = pod::sys::open_dir(FdRef::cwd(), "/tmp");
    if (parent) (void)pod::sys::remove_tree(*parent, path.substr(5));
  }
};

bool is_empty(const std::string& dir) {
  int n = 0;
  if (DIR* h = opendir(dir.c_str())) {
    while (dirent* e = readdir(h)) n += e->d_name[0] != '.';
    closedir(h);
  }
  return n == 0;
}

void print(const Probes& p) {
  for (auto& [name, probe] : probe_list(p))
    std::fprintf(stderr, "  %s: %s: %s\n", name.c_str(), probe->ok ? "ok" : "no", probe->detail.c_str());
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("probes: root on this machine can do everything, and the scratch is left empty") {
    TempDir t;
    Probes p = run_probes(t.fd);
    print(p);
    CHECK(p.userns.ok);
    CHECK(p.overlay_in_userns.ok);
    CHECK(p.idmapped_store.ok);
    CHECK(p.overlay_over_idmapped.ok);
    CHECK(p.lowerdir_plus.ok);
    CHECK(p.lowerdir_plus.detail.find("fds") != std::string::npos);
    CHECK(p.metacopy_lowers.ok);
    CHECK(p.boot_id.size() == 36);
    CHECK(is_empty(t.path));
  }

  TEST_CASE("probes: an ordinary user is not privileged over the store's filesystem") {
    TempDir t;
    REQUIRE(chown(t.path.c_str(), 65534, 65534) == 0);
    int rc = in_child([&] {
      if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        return 1;
      prctl(PR_SET_DUMPABLE, 1);  // as after an exec: /proc/self stays the user's
      Probes p = run_probes(t.fd);
      print(p);
      if (!p.userns.ok || !p.overlay_in_userns.ok || !p.lowerdir_plus.ok) return 2;
      if (p.idmapped_store.ok || p.overlay_over_idmapped.ok || p.metacopy_lowers.ok) return 3;
      // (the filesystem is named: ext4 here, tmpfs where /tmp is one)
      if (p.idmapped_store.detail.find("not privileged over the filesystem of the store (") == std::string::npos)
        return 4;
      return is_empty(t.path) ? 0 : 5;
    });
    CHECK(rc == 0);
  }

  TEST_CASE("probes: the cache is used for this boot, replaced when damaged or from another boot") {
    TempDir t;
    REQUIRE(mkdirat(t.fd.get(), "scratch", 0700) == 0);
    Fd scratch(openat(t.fd.get(), "scratch", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(pod::sys::write_file_atomic(t.fd, "probes.json", "{\"boot_id\": ").has_value());
    auto first = cached_probes(t.fd, scratch);
    REQUIRE(first.has_value());
    auto text = pod::sys::read_file(t.fd, "probes.json", 1 << 20);
    REQUIRE(text.has_value());
    auto cached = parse_probes_json(*text);
    REQUIRE(cached.has_value());
    CHECK(cached->boot_id == first->boot_id);
    CHECK(cached->userns.ok);
    // A cache of this boot is believed as it is...
    cached->userns.detail = "from the cache";
    REQUIRE(pod::sys::write_file_atomic(t.fd, "probes.json", probes_json(*cached)).has_value());
    auto second = cached_probes(t.fd, scratch);
    REQUIRE(second.has_value());
    CHECK(second->userns.detail == "from the cache");
    // ...one of another boot is not.
    cached->boot_id = "00000000-0000-0000-0000-000000000000";
    REQUIRE(pod::sys::write_file_atomic(t.fd, "probes.json", probes_json(*cached)).has_value());
    auto third = cached_probes(t.fd, scratch);
    REQUIRE(third.has_value());
    CHECK(third->userns.detail != "from the cache");
    CHECK(third->boot_id == first->boot_id);
    CHECK(is_empty(t.path + "/scratch"));
  }
}
