// Removing a pod detaches what is mounted below its directory (root's pods: the rootfs
// and ns/ bind mounts), deepest first, before removing its files. Runs in a forked
// child with a private mount namespace, so nothing outlives it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "pod/runtime/pods.hpp"
#include "pod/sys/fs.hpp"
#include "child_steps.hpp"

namespace {

bool mounted_below(const std::string& path) {
  auto info = pod::sys::read_file(pod::sys::FdRef::cwd(), "/proc/self/mountinfo", 1 << 20);
  return !info || info->find(" " + path + "/") != std::string::npos;
}

int remove_mounted_pod(const std::string& store) {
  using namespace pod::runtime;
  STEP(10, unshare(CLONE_NEWNS) == 0);
  STEP(11, mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  STEP(12, mount("pod-test", store.c_str(), "tmpfs", 0, "mode=0700,size=16m") == 0);
  PodRecord r;
  r.uuid = new_uuid();
  r.name = "mounted";
  AppRecord a;
  a.app.name = "main";
  a.app.argv = {"/bin/true"};
  r.apps.push_back(a);
  r.pid = 999999;  // started once, lock free: exited
  pod::sys::Fd sfd(open(store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  STEP(13, sfd.valid());
  {
    auto pd = PodDir::create(sfd, r);
    STEP(14, pd.has_value());
    STEP(15, pd->write_record(r).has_value());
  }
  std::string dir = store + "/pods/" + r.uuid;
  // The rootfs as a tmpfs with a nested mount, and the net namespace bound on ns/net.
  STEP(20, mount("rootfs", (dir + "/rootfs").c_str(), "tmpfs", 0, "mode=0755") == 0);
  STEP(21, mkdir((dir + "/rootfs/proc").c_str(), 0555) == 0);
  STEP(22, mount("proc", (dir + "/rootfs/proc").c_str(), "tmpfs", 0, nullptr) == 0);
  pod::sys::Fd nsfile(open((dir + "/ns/net").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  STEP(23, nsfile.valid());
  STEP(24, mount("/proc/self/ns/net", (dir + "/ns/net").c_str(), nullptr, MS_BIND, nullptr) == 0);
  nsfile.reset();
  // A space in a mount point is escaped in mountinfo.
  STEP(25, mkdir((dir + "/rootfs/a dir").c_str(), 0755) == 0);
  STEP(26, mount("spaced", (dir + "/rootfs/a dir").c_str(), "tmpfs", 0, nullptr) == 0);
  STEP(27, mounted_below(store + "/pods"));

  auto info = find_pod(sfd, "mounted");
  STEP(30, info.has_value() && info->state == PodState::exited);
  int released = 0;
  Releasers rel{[&](const PodRecord&) -> pod::sys::Result<void> {
                  ++released;
                  return {};
                },
                nullptr};
  auto res = remove_pod(sfd, *info, rel);
  if (!res) std::fprintf(stderr, "remove_pod: %s\n", res.error().what().c_str());
  STEP(31, res.has_value());
  STEP(32, !mounted_below(store + "/pods"));
  struct stat st;
  STEP(33, stat(dir.c_str(), &st) != 0 && errno == ENOENT);
  STEP(34, stat((store + "/pods/.garbage-" + r.uuid).c_str(), &st) != 0 && errno == ENOENT);
  STEP(35, released == 1);
  sfd.reset();
  // Busy if anything was left mounted below (or open) on the store's tmpfs.
  STEP(36, umount2(store.c_str(), 0) == 0);
  return 0;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("remove_pod detaches the rootfs and ns/ mounts below the pod") {
    char tmpl[] = "/tmp/pod-pods-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string store = tmpl;
    CHECK(in_child([&] { return remove_mounted_pod(store); }) == 0);
    CHECK(rmdir(store.c_str()) == 0);
  }
}
