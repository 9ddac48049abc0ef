// flatten(): a copy of the layers that looks like their overlay, checked entry by
// entry and against the overlay itself (mounted in a private mount namespace).
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pod/overlay/compose.hpp"
#include "pod/sys/fs.hpp"
#include "child_steps.hpp"

using pod::sys::Fd;
using pod::sys::FdRef;
namespace overlay = pod::overlay;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/pod-flatten-test.XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() {
    umount2((path + "/mnt").c_str(), MNT_DETACH);  // after a failed step
    auto parent = pod::sys::open_dir(FdRef::cwd(), "/tmp");
    if (parent) (void)pod::sys::remove_tree(*parent, path.substr(5));
  }
  [[nodiscard]] std::string operator/(const std::string& p) const { return path + "/" + p; }
};

bool put(const std::string& path, const std::string& text, mode_t mode = 0644) {
  Fd f(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  return f && write(f.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::string get(const std::string& path) {
  auto r = pod::sys::read_file(FdRef::cwd(), path, 1 << 20);
  return r ? *r : "<error>";
}

bool mkdirs(const std::vector<std::string>& dirs) {
  for (auto& d : dirs)
    if (mkdir(d.c_str(), 0755) != 0) return false;
  return true;
}

Fd dir_fd(const std::string& path) { return Fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

bool whiteout(const std::string& path) { return mknod(path.c_str(), S_IFCHR, makedev(0, 0)) == 0; }

std::string xattr(const std::string& path, const char* name) {
  char v[256];
  ssize_t n = lgetxattr(path.c_str(), name, v, sizeof v);
  return n < 0 ? "<none>" : std::string(v, static_cast<std::size_t>(n));
}

// Every entry below dir: type, mode, owner, size, link target, content, and the
// mtime of non-directories (a directory's changes with what is written into it).
void listing(const std::string& dir, const std::string& rel, std::map<std::string, std::string>& out) {
  DIR* d = opendir((dir + "/" + rel).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = rel.empty() ? n : rel + "/" + n;
    std::string full = dir + "/" + p;
    struct stat st {};
    lstat(full.c_str(), &st);
    std::string line = fmt::format("{:o} {}:{}", st.st_mode, st.st_uid, st.st_gid);
    if (!S_ISDIR(st.st_mode)) line += fmt::format(" nlink={}", st.st_nlink);
    if (S_ISLNK(st.st_mode)) {
      char t[256];
      ssize_t k = readlink(full.c_str(), t, sizeof t);
      line += " -> " + std::string(t, k > 0 ? static_cast<std::size_t>(k) : 0);
    }
    if (S_ISREG(st.st_mode)) line += " '" + get(full) + "'";
    if (!S_ISDIR(st.st_mode)) line += fmt::format(" {}", st.st_mtim.tv_sec);
    if (!S_ISLNK(st.st_mode)) line += " x=" + xattr(full, "user.test");
    out[p] = line;
    if (S_ISDIR(st.st_mode)) listing(dir, p, out);
  }
  closedir(d);
}

int make_layers(const TempDir& t) {
  STEP(1, mkdirs({t / "l1", t / "l2", t / "l3", t / "dest", t / "mnt"}));
  STEP(2, mkdirs({t / "l1/bin", t / "l1/etc", t / "l1/gonedir", t / "l1/odir", t / "l1/odir/sub", t / "l1/rep"}));
  STEP(3, put(t / "l1/bin/tool", "#!/bin/sh\n", 0755) && put(t / "l1/etc/conf", "v1") && put(t / "l1/etc/keep", "k") &&
              put(t / "l1/gone", "g") && put(t / "l1/gonedir/x", "x") && put(t / "l1/odir/old", "o") &&
              put(t / "l1/odir/sub/deep", "d") && put(t / "l1/rep/inner", "i") && put(t / "l1/f2d", "f") &&
              put(t / "l1/su", "s", 0755));
  STEP(4, chmod((t / "l1/su").c_str(), 04755) == 0);
  STEP(5, put(t / "l1/hl1", "linked") && link((t / "l1/hl1").c_str(), (t / "l1/hl2").c_str()) == 0 &&
              chown((t / "l1/hl1").c_str(), 1000, 1001) == 0 &&
              setxattr((t / "l1/hl1").c_str(), "user.test", "val", 3, 0) == 0);
  STEP(6, symlink("bin/tool", (t / "l1/link").c_str()) == 0 && lchown((t / "l1/link").c_str(), 1002, 1002) == 0);
  STEP(7, mkfifo((t / "l1/fifo").c_str(), 0640) == 0);
  // L2: overrides, whiteouts, an opaque dir, a file replacing a dir and the reverse.
  STEP(10, mkdirs({t / "l2/etc", t / "l2/odir", t / "l2/f2d"}));
  STEP(11, put(t / "l2/etc/conf", "v2", 0600) && chown((t / "l2/etc/conf").c_str(), 33, 33) == 0);
  timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
  STEP(12, utimensat(AT_FDCWD, (t / "l2/etc/conf").c_str(), ts, 0) == 0);
  STEP(13, whiteout(t / "l2/gone") && whiteout(t / "l2/gonedir"));
  STEP(14, setxattr((t / "l2/odir").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0 && put(t / "l2/odir/new", "n"));
  STEP(15, put(t / "l2/rep", "now a file") && put(t / "l2/f2d/a", "a"));
  STEP(16, setxattr((t / "l2/etc").c_str(), "user.test", "etc2", 4, 0) == 0);
  // L3: hard links of its own.
  STEP(20, put(t / "l3/h3a", "three") && link((t / "l3/h3a").c_str(), (t / "l3/h3b").c_str()) == 0);
  return 0;
}

int flatten_like_overlay() {
  STEP(30, unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  TempDir t;
  if (int rc = make_layers(t)) return rc;
  Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), l3 = dir_fd(t / "l3"), dest = dir_fd(t / "dest");
  FdRef lowers[] = {l1, l2, l3};
  auto r = overlay::flatten(lowers, dest, {});
  if (!r) {
    std::fprintf(stderr, "flatten: %s\n", r.error().what().c_str());
    return 31;
  }
  std::string d = t / "dest";
  struct stat st {}, st2 {};
  STEP(40, get(d + "/etc/conf") == "v2" && get(d + "/etc/keep") == "k");
  STEP(41, stat((d + "/etc/conf").c_str(), &st) == 0 && st.st_uid == 33 && (st.st_mode & 07777) == 0600 &&
               st.st_mtim.tv_sec == 1000000000);
  STEP(42, access((d + "/gone").c_str(), F_OK) != 0 && access((d + "/gonedir").c_str(), F_OK) != 0);
  STEP(43, access((d + "/odir/old").c_str(), F_OK) != 0 && access((d + "/odir/sub").c_str(), F_OK) != 0);
  STEP(44, get(d + "/odir/new") == "n" && xattr(d + "/odir", "trusted.overlay.opaque") == "<none>");
  STEP(45, stat((d + "/rep").c_str(), &st) == 0 && S_ISREG(st.st_mode) && get(d + "/f2d/a") == "a");
  STEP(46, stat((d + "/hl1").c_str(), &st) == 0 && stat((d + "/hl2").c_str(), &st2) == 0 && st.st_ino == st2.st_ino &&
               st.st_nlink == 2 && st.st_uid == 1000 && st.st_gid == 1001 && xattr(d + "/hl2", "user.test") == "val");
  STEP(47, stat((d + "/h3a").c_str(), &st) == 0 && stat((d + "/h3b").c_str(), &st2) == 0 && st.st_ino == st2.st_ino);
  STEP(48, lstat((d + "/link").c_str(), &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == 1002);
  STEP(49, lstat((d + "/fifo").c_str(), &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640);
  STEP(50, stat((d + "/su").c_str(), &st) == 0 && (st.st_mode & 07777) == 04755);
  STEP(51, xattr(d + "/etc", "user.test") == "etc2");
  // And the same as overlayfs shows the layers.
  auto m = overlay::compose(lowers, FdRef::cwd(), FdRef::cwd(), {.read_only = true});
  STEP(60, m && move_mount(m->get(), "", AT_FDCWD, (t / "mnt").c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0);
  std::map<std::string, std::string> want, got;
  listing(t / "mnt", "", want);
  listing(d, "", got);
  STEP(61, umount2((t / "mnt").c_str(), MNT_DETACH) == 0);
  for (auto& [p, line] : want)
    if (got[p] != line) std::fprintf(stderr, "%s: overlay '%s', flatten '%s'\n", p.c_str(), line.c_str(), got[p].c_str());
  STEP(62, want.size() > 15 && want == got);
  return 0;
}

// A rootless store's layers mark opaque dirs with user.overlay.opaque.
int flatten_user_opaque() {
  TempDir t;
  STEP(70, mkdirs({t / "l1", t / "l2", t / "dest", t / "l1/o", t / "l2/o"}));
  STEP(71, put(t / "l1/o/old", "o") && put(t / "l2/o/new", "n"));
  STEP(72, setxattr((t / "l2/o").c_str(), "user.overlay.opaque", "y", 1, 0) == 0);
  Fd l1 = dir_fd(t / "l1"), l2 = dir_fd(t / "l2"), dest = dir_fd(t / "dest");
  FdRef lowers[] = {l1, l2};
  STEP(73, overlay::flatten(lowers, dest, {.userxattr = true}).has_value());
  STEP(74, access((t / "dest/o/old").c_str(), F_OK) != 0 && get(t / "dest/o/new") == "n");
  STEP(75, xattr(t / "dest/o", "user.overlay.opaque") == "<none>");
  return 0;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("flatten: whiteouts, opaque dirs, hard links, xattrs, owners; the same tree overlayfs shows") {
    CHECK(in_child(flatten_like_overlay) == 0);
  }
  TEST_CASE("flatten: user.overlay.opaque of a rootless store") { CHECK(in_child(flatten_user_opaque) == 0); }
}
