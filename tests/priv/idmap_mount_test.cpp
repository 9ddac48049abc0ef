// Idmapped mounts of tmpfs and ext4 directories, and an overlay over them. Everything
// happens in a forked child with a private mount namespace on a private tmpfs, so no
// mount, loop device or image outlives the child.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "pod/idmap/mount.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/idmap/userns.hpp"
#include "pod/sys/child.hpp"
#include "child_steps.hpp"

using namespace pod::idmap;
using pod::sys::Fd;

namespace {

// A private mount namespace with a fresh tmpfs on `dir`.
int private_workspace(const std::string& dir) {
  STEP(60, unshare(CLONE_NEWNS) == 0);
  STEP(61, mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  STEP(62, mount("pod-test", dir.c_str(), "tmpfs", 0, "mode=0755,size=64m") == 0);
  return 0;
}

// Makes `img` an ext4 filesystem and mounts it at `target` through a loop device
// that clears itself when the mount goes away.
int mount_ext4(const std::string& img, const std::string& target) {
  {
    Fd f(open(img.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    STEP(70, f.valid() && ftruncate(f.get(), 16 << 20) == 0);
  }
  STEP(71, pod::sys::run_program({"mkfs.ext4", "-q", "-F", img}).has_value());
  Fd img_fd(open(img.c_str(), O_RDWR | O_CLOEXEC));
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  STEP(72, img_fd.valid() && ctl.valid());
  std::string dev;
  Fd loop;
  for (int tries = 0; tries < 20 && !loop.valid(); ++tries) {
    int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    STEP(73, n >= 0);
    dev = "/dev/loop" + std::to_string(n);
    Fd l(open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!l.valid()) continue;
    struct loop_config cfg {};
    cfg.fd = static_cast<__u32>(img_fd.get());
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(l.get(), LOOP_CONFIGURE, &cfg) == 0) loop = std::move(l);
    else if (errno != EBUSY) return step_failed(74, "LOOP_CONFIGURE");
  }
  STEP(75, loop.valid());
  Fd fs(fsopen("ext4", FSOPEN_CLOEXEC));
  STEP(76, fs.valid());
  STEP(77, fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", dev.c_str(), 0) == 0);
  STEP(78, fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0);
  Fd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
  STEP(79, mnt.valid());
  STEP(80, move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0);
  return 0;
}

// dir/{root,user,far}: owned 0:0, 1000:1000 and 70000:70000 (outside the map below).
int populate(const std::string& dir, const char* prefix) {
  STEP(85, mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST);
  const std::pair<const char*, unsigned> files[] = {{"root", 0}, {"user", 1000}, {"far", 70000}};
  for (auto& [name, id] : files) {
    std::string p = dir + "/" + prefix + name;
    Fd f(open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    STEP(86, f.valid() && fchown(f.get(), id, id) == 0);
  }
  return 0;
}

// The owner of `name` seen below the mount `mnt`, as "uid:gid".
std::string owner(int mnt, const std::string& name) {
  struct stat st {};
  if (fstatat(mnt, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return "stat failed: " + name;
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

int expect_owner(int code, int mnt, const std::string& name, const std::string& want) {
  std::string got = owner(mnt, name);
  if (got == want) return 0;
  std::fprintf(stderr, "step %d: '%s' is owned by %s, want %s\n", code, name.c_str(), got.c_str(), want.c_str());
  return code;
}

#define EXPECT_OWNER(code, mnt, name, want) \
  if (int rc_ = expect_owner(code, mnt, name, want)) return rc_

int idmapped_layers_and_overlay(const std::string& ws) {
  if (int rc = private_workspace(ws)) return rc;
  std::string tdir = ws + "/t", emnt = ws + "/e", edir = emnt + "/layer";
  STEP(1, mkdir(emnt.c_str(), 0755) == 0);
  if (int rc = populate(tdir, "t-")) return rc;
  if (int rc = mount_ext4(ws + "/img", emnt)) return rc;
  if (int rc = populate(edir, "e-")) return rc;

  IdMap map{{{0, 100000, 65536}}};
  auto ns = UserNamespace::create(map, map);
  if (!ns) return std::fprintf(stderr, "%s\n", ns.error().what().c_str()), 2;

  Fd tfd(open(tdir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  Fd efd(open(edir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  STEP(3, tfd.valid() && efd.valid());
  auto tm = idmapped_mount(tfd, ns->fd());
  if (!tm) return std::fprintf(stderr, "tmpfs: %s\n", tm.error().what().c_str()), 4;
  auto em = idmapped_mount(efd, ns->fd());
  if (!em) return std::fprintf(stderr, "ext4: %s\n", em.error().what().c_str()), 5;

  // Through the mounts: 0 -> 100000, 1000 -> 101000, unmapped 70000 -> overflow 65534.
  EXPECT_OWNER(10, tm->get(), "t-root", "100000:100000");
  EXPECT_OWNER(11, tm->get(), "t-user", "101000:101000");
  EXPECT_OWNER(12, tm->get(), "t-far", "65534:65534");
  EXPECT_OWNER(13, em->get(), "e-root", "100000:100000");
  EXPECT_OWNER(14, em->get(), "e-user", "101000:101000");
  EXPECT_OWNER(15, em->get(), "e-far", "65534:65534");
  // The directories themselves are unchanged.
  EXPECT_OWNER(16, tfd.get(), "t-root", "0:0");
  EXPECT_OWNER(17, efd.get(), "e-user", "1000:1000");

  // Attach both, then an overlay with them as its lower layers (Linux 5.19).
  std::string l1 = ws + "/l1", l2 = ws + "/l2";
  STEP(20, mkdir(l1.c_str(), 0755) == 0 && mkdir(l2.c_str(), 0755) == 0);
  STEP(21, move_mount(tm->get(), "", AT_FDCWD, l1.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0);
  STEP(22, move_mount(em->get(), "", AT_FDCWD, l2.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0);
  Fd ovl(fsopen("overlay", FSOPEN_CLOEXEC));
  STEP(23, ovl.valid());
  std::string lower = l1 + ":" + l2;
  STEP(24, fsconfig(ovl.get(), FSCONFIG_SET_STRING, "lowerdir", lower.c_str(), 0) == 0);
  STEP(25, fsconfig(ovl.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0);
  Fd merged(fsmount(ovl.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY));
  STEP(26, merged.valid());
  EXPECT_OWNER(30, merged.get(), "t-root", "100000:100000");
  EXPECT_OWNER(31, merged.get(), "t-user", "101000:101000");
  EXPECT_OWNER(32, merged.get(), "e-root", "100000:100000");
  EXPECT_OWNER(33, merged.get(), "e-user", "101000:101000");
  EXPECT_OWNER(34, merged.get(), "e-far", "65534:65534");

  // An overlay cannot itself be idmapped: EINVAL, explained.
  auto again = idmapped_mount(merged, ns->fd());
  if (again) return std::fprintf(stderr, "idmapping the overlay worked\n"), 40;
  if (again.error().code != EINVAL || again.error().message.find("cannot be idmapped") == std::string::npos)
    return std::fprintf(stderr, "overlay: %s\n", again.error().what().c_str()), 41;
  return 0;
}

// As an unprivileged user in a user namespace of its own: the host's filesystem is
// not ours to idmap.
int unprivileged_idmap(const std::string& dir) {
  StoreMapping self;
  self.uids.extents.push_back({0, static_cast<std::uint32_t>(getuid()), 1});
  self.gids.extents.push_back({0, static_cast<std::uint32_t>(getgid()), 1});
  if (auto r = enter_user_namespace(self); !r) return std::fprintf(stderr, "%s\n", r.error().what().c_str()), 50;
  STEP(51, unshare(CLONE_NEWNS) == 0);  // for open_tree, which needs CAP_SYS_ADMIN over the mount namespace
  Fd d(open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  Fd own(open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC));
  STEP(52, d.valid() && own.valid());
  auto m = idmapped_mount(d, own);
  if (m) return std::fprintf(stderr, "an unprivileged idmapped mount of a host directory worked\n"), 53;
  if (m.error().code != EPERM ||
      !m.error().message.starts_with("idmapping a mount: not privileged over this filesystem"))
    return std::fprintf(stderr, "unexpected: %s\n", m.error().what().c_str()), 54;
  return 0;
}

int drop_to_nobody() {
  STEP(95, setgroups(0, nullptr) == 0 && setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0);
  prctl(PR_SET_DUMPABLE, 1);  // credential changes made /proc/self root's
  return 0;
}

std::string make_workspace() {
  char tmpl[] = "/tmp/pod-idmap-priv-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  REQUIRE(chmod(tmpl, 0755) == 0);
  return tmpl;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("idmapped mounts of tmpfs and ext4 directories, and an overlay over them, show the mapped owners") {
    std::string ws = make_workspace();
    int rc = in_child([&] { return idmapped_layers_and_overlay(ws); });
    CHECK(rmdir(ws.c_str()) == 0);  // empty: everything was on the child's tmpfs
    CHECK(rc == 0);
  }
}

TEST_SUITE("needs:userns") {
  TEST_CASE("an unprivileged process cannot idmap a host ext4 directory, and is told why") {
    std::string ws = make_workspace();
    int rc = in_child([&] {
      std::string dir = ws;
      if (geteuid() == 0) {
        // Root: a real ext4 (an image on a loop device) in a private namespace,
        // then a child that gives up root.
        if (int r = private_workspace(ws)) return r;
        std::string e = ws + "/e";
        STEP(90, mkdir(e.c_str(), 0755) == 0);
        if (int r = mount_ext4(ws + "/img", e)) return r;
        STEP(91, mkdir((e + "/d").c_str(), 0755) == 0);
        dir = e + "/d";
        return in_child([&] {
          if (int r = drop_to_nobody()) return r;
          return unprivileged_idmap(dir);
        });
      }
      return unprivileged_idmap(dir);  // a user: the host filesystem under /tmp
    });
    CHECK(rmdir(ws.c_str()) == 0);
    CHECK(rc == 0);
  }
}
