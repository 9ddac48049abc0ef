// compose(): an overlay of layer trees as a pod would see it. Each case runs in a
// forked child with a private mount namespace; the overlay is attached only there,
// and the layer trees live in a temporary directory on the disk (as the store does).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "pod/idmap/mount.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/overlay/compose.hpp"
#include "pod/sys/fs.hpp"
#include "child_steps.hpp"

using pod::sys::Fd;
using pod::sys::FdRef;
namespace overlay = pod::overlay;

namespace {

// An error from the library: printed, then the step fails.
#define TRY_STEP(code, expr)                                                                \
  ({                                                                                        \
    auto r_ = (expr);                                                                       \
    if (!r_) {                                                                              \
      std::fprintf(stderr, "step %d: %s\n", code, r_.error().what().c_str());               \
      return code;                                                                          \
    }                                                                                       \
    std::move(r_).value();                                                                  \
  })

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/pod-overlay-test.XXXXXX";
    path = mkdtemp(t);
    chmod(path.c_str(), 0755);
  }
  ~TempDir() {
    umount2((path + "/mnt").c_str(), MNT_DETACH);  // after a failed step
    auto parent = pod::sys::open_dir(FdRef::cwd(), "/tmp");
    if (parent) (void)pod::sys::remove_tree(*parent, path.substr(5));
  }
  [[nodiscard]] std::string operator/(const std::string& p) const { return path + "/" + p; }
};

bool put(const std::string& path, const std::string& text) {
  Fd f(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  return f && write(f.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::string get(const std::string& path) {
  auto r = pod::sys::read_file(FdRef::cwd(), path, 1 << 20);
  return r ? *r : "<" + std::string(strerrorname_np(r.error().code)) + ">";
}

bool mkdirs(const std::vector<std::string>& dirs) {
  for (auto& d : dirs)
    if (mkdir(d.c_str(), 0755) != 0) return false;
  return true;
}

Fd dir_fd(const std::string& path) { return Fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

int private_mounts() {
  STEP(90, unshare(CLONE_NEWNS) == 0);
  STEP(91, mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  return 0;
}

// Two layers: L2 overrides both.txt, whites out gone.txt and makes odir opaque.
// `xattr_ns` is "trusted" (root's store) or "user" (a user namespace's store).
int make_layers(const TempDir& t, const char* xattr_ns) {
  STEP(1, mkdirs({t / "l1", t / "l2", t / "upper", t / "work", t / "mnt", t / "l1/dir", t / "l1/odir", t / "l2/odir"}));
  STEP(2, put(t / "l1/a.txt", "a") && put(t / "l1/both.txt", "L1") && put(t / "l1/gone.txt", "gone") &&
              put(t / "l1/dir/d1.txt", "d1") && put(t / "l1/odir/old.txt", "old"));
  STEP(3, put(t / "l2/both.txt", "L2") && put(t / "l2/odir/new.txt", "new"));
  STEP(4, mknod((t / "l2/gone.txt").c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0);
  std::string key = std::string(xattr_ns) + ".overlay.opaque";
  STEP(5, setxattr((t / "l2/odir").c_str(), key.c_str(), "y", 1, 0) == 0);
  STEP(6, chmod((t / "upper").c_str(), 0777) == 0);  // the merged root: writable by anyone
  return 0;
}

// What a user of the merged tree sees.
int check_merged(const TempDir& t) {
  STEP(10, get(t / "mnt/both.txt") == "L2");  // the top layer wins
  STEP(11, get(t / "mnt/a.txt") == "a");
  STEP(12, get(t / "mnt/dir/d1.txt") == "d1");
  STEP(13, access((t / "mnt/gone.txt").c_str(), F_OK) != 0 && errno == ENOENT);  // whiteout
  STEP(14, access((t / "mnt/odir/old.txt").c_str(), F_OK) != 0 && errno == ENOENT);  // opaque
  STEP(15, get(t / "mnt/odir/new.txt") == "new");
  return 0;
}

int attach(const Fd& m, const std::string& target) {
  STEP(20, move_mount(m.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0);
  return 0;
}

int compose_as_root(overlay::LayerSpec spec) {
  if (int rc = private_mounts()) return rc;
  TempDir t;
  if (int rc = make_layers(t, "trusted")) return rc;
  overlay::force_layer_spec(spec);
  Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), up = dir_fd(t / "upper"), wk = dir_fd(t / "work");
  FdRef lowers[] = {l1, l2};
  Fd m = TRY_STEP(30, overlay::compose(lowers, up, wk, {}));
  if (int rc = attach(m, t / "mnt")) return rc;
  if (int rc = check_merged(t)) return rc;
  struct statvfs sv {};
  STEP(31, statvfs((t / "mnt").c_str(), &sv) == 0 && (sv.f_flag & ST_NODEV) && !(sv.f_flag & ST_NOSUID));
  // A write by uid 1234 lands in the upper directory, owned by the writer; layers unchanged.
  int rc = in_child([&] {
    STEP(40, setresgid(1234, 1234, 1234) == 0 && setresuid(1234, 1234, 1234) == 0);
    STEP(41, put(t / "mnt/new.txt", "written"));
    return 0;
  });
  STEP(42, rc == 0);
  struct stat st {};
  STEP(43, stat((t / "upper/new.txt").c_str(), &st) == 0 && st.st_uid == 1234 && st.st_gid == 1234);
  STEP(44, get(t / "upper/new.txt") == "written");
  STEP(45, access((t / "l1/new.txt").c_str(), F_OK) != 0 && access((t / "l2/new.txt").c_str(), F_OK) != 0);
  STEP(46, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
  return 0;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("compose: top layer wins, whiteouts and opaque dirs hide, writes go to the upper dir") {
    CHECK(in_child([] { return compose_as_root(overlay::LayerSpec::automatic); }) == 0);
    CHECK(in_child([] { return compose_as_root(overlay::LayerSpec::fd); }) == 0);
    CHECK(in_child([] { return compose_as_root(overlay::LayerSpec::proc_path); }) == 0);
    CHECK(in_child([] { return compose_as_root(overlay::LayerSpec::legacy); }) == 0);
  }

  TEST_CASE("compose: idmapped lowers show mapped owners, the layer's inodes stay as they were") {
    CHECK(in_child([] {
            if (int rc = private_mounts()) return rc;
            TempDir t;
            if (int rc = make_layers(t, "trusted")) return rc;
            STEP(50, chown((t / "l1/a.txt").c_str(), 1000, 1000) == 0);
            struct stat before {}, after {};
            STEP(51, stat((t / "l1/a.txt").c_str(), &before) == 0);
            pod::idmap::IdMap map;
            map.extents.push_back({0, 100000, 65536});
            auto ns = TRY_STEP(52, pod::idmap::UserNamespace::create(map, map));
            Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), up = dir_fd(t / "upper"), wk = dir_fd(t / "work");
            Fd idm = TRY_STEP(53, pod::idmap::idmapped_mount(l1, ns.fd()));
            FdRef lowers[] = {idm, l2};
            Fd m = TRY_STEP(54, overlay::compose(lowers, up, wk, {}));
            if (int rc = attach(m, t / "mnt")) return rc;
            struct stat a {}, d {}, both {};
            STEP(55, stat((t / "mnt/a.txt").c_str(), &a) == 0 && a.st_uid == 101000 && a.st_gid == 101000);
            STEP(56, stat((t / "mnt/dir/d1.txt").c_str(), &d) == 0 && d.st_uid == 100000);
            STEP(57, stat((t / "mnt/both.txt").c_str(), &both) == 0 && both.st_uid == 0);  // from l2: not idmapped
            STEP(58, stat((t / "l1/a.txt").c_str(), &after) == 0);
            STEP(59, after.st_uid == 1000 && after.st_gid == 1000 && after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
                         after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
            STEP(60, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
            return 0;
          }) == 0);
  }

  // As `pod run` for a user: the store is opened, then a mount namespace is made.
  TEST_CASE("compose: directories opened before unshare(CLONE_NEWNS) still compose") {
    CHECK(in_child([] {
            TempDir t;
            if (int rc = make_layers(t, "trusted")) return rc;
            Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), up = dir_fd(t / "upper"), wk = dir_fd(t / "work");
            if (int rc = private_mounts()) return rc;
            FdRef lowers[] = {l1, l2};
            Fd m = TRY_STEP(65, overlay::compose(lowers, up, wk, {}));
            if (int rc = attach(m, t / "mnt")) return rc;
            if (int rc = check_merged(t)) return rc;
            STEP(66, put(t / "mnt/x", "x") && get(t / "upper/x") == "x");
            FdRef one[] = {l1};
            Fd ro = TRY_STEP(67, overlay::compose(one, up, wk, {.read_only = true}));
            STEP(68, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
            return 0;
          }) == 0);
  }

  TEST_CASE("compose: too many layers is an error naming the limit") {
    CHECK(in_child([] {
            TempDir t;
            std::vector<Fd> fds;
            for (int i = 0; i < 501; ++i) {
              STEP(70, mkdir((t / std::to_string(i)).c_str(), 0755) == 0);
              fds.push_back(dir_fd(t / std::to_string(i)));
            }
            STEP(71, mkdirs({t / "upper", t / "work"}));
            Fd up = dir_fd(t / "upper"), wk = dir_fd(t / "work");
            std::vector<FdRef> lowers(fds.begin(), fds.end());
            auto m = overlay::compose(lowers, up, wk, {});
            STEP(72, !m && m.error().message.find("too many lower directories, limit is 500") != std::string::npos);
            overlay::force_layer_spec(overlay::LayerSpec::legacy);
            std::span<const FdRef> twenty(lowers.data(), 20);
            m = overlay::compose(twenty, up, wk, {});
            if (m) return 73;
            std::fprintf(stderr, "legacy: %s\n", m.error().what().c_str());
            STEP(74, m.error().code == E2BIG &&
                         m.error().message.find("too many layers for the legacy lowerdir option (20 layers") !=
                             std::string::npos);
            return 0;
          }) == 0);
  }

  TEST_CASE("compose: read-only with one layer is a read-only bind, with two an overlay without upper") {
    CHECK(in_child([] {
            if (int rc = private_mounts()) return rc;
            TempDir t;
            if (int rc = make_layers(t, "trusted")) return rc;
            Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2");
            FdRef one[] = {l1};
            Fd m = TRY_STEP(80, overlay::compose(one, FdRef::cwd(), FdRef::cwd(), {.read_only = true}));
            if (int rc = attach(m, t / "mnt")) return rc;
            STEP(81, get(t / "mnt/both.txt") == "L1");
            STEP(82, !put(t / "mnt/x", "x") && errno == EROFS);
            STEP(83, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
            FdRef two[] = {l1, l2};
            m = TRY_STEP(84, overlay::compose(two, FdRef::cwd(), FdRef::cwd(), {.read_only = true}));
            if (int rc = attach(m, t / "mnt")) return rc;
            if (int rc = check_merged(t)) return rc;
            STEP(85, !put(t / "mnt/x", "x") && errno == EROFS);
            STEP(86, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
            return 0;
          }) == 0);
  }
}

TEST_SUITE("needs:userns") {
  // As an ordinary user would: ids of its own user namespace, user.overlay.* xattrs.
  TEST_CASE("compose: in a user namespace with userxattr, whiteouts and opaque dirs work") {
    CHECK(in_child([] {
            TempDir t;
            if (geteuid() == 0) {
              STEP(100, chown(t.path.c_str(), 65534, 65534) == 0);
              STEP(101, setgroups(0, nullptr) == 0 && setresgid(65534, 65534, 65534) == 0 &&
                            setresuid(65534, 65534, 65534) == 0);
              prctl(PR_SET_DUMPABLE, 1);  // as after an exec: /proc/self stays the user's
            }
            uid_t uid = geteuid();
            gid_t gid = getegid();
            STEP(102, unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0);
            STEP(103, put("/proc/self/setgroups", "deny") && put("/proc/self/uid_map", fmt::format("0 {} 1", uid)) &&
                          put("/proc/self/gid_map", fmt::format("0 {} 1", gid)));
            STEP(104, mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
            if (int rc = make_layers(t, "user")) return rc;
            Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), up = dir_fd(t / "upper"), wk = dir_fd(t / "work");
            FdRef lowers[] = {l1, l2};
            Fd m = TRY_STEP(105, overlay::compose(lowers, up, wk, {.userxattr = true}));
            if (int rc = attach(m, t / "mnt")) return rc;
            if (int rc = check_merged(t)) return rc;
            STEP(106, put(t / "mnt/new.txt", "w") && get(t / "upper/new.txt") == "w");
            // Removing a lower file makes a whiteout in the upper directory.
            STEP(107, unlink((t / "mnt/a.txt").c_str()) == 0);
            struct stat st {};
            STEP(108, stat((t / "upper/a.txt").c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0);
            STEP(109, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
            return 0;
          }) == 0);
  }
}
