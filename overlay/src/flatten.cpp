// flatten(): what overlayfs would show, as a plain copy. Layers are merged bottom
// first: a whiteout (a 0:0 character device) removes the path, an opaque directory
// empties what lower layers put there, anything else replaces what was there.
#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pod/overlay/compose.hpp"
#include "pod/sys/fs.hpp"

namespace pod::overlay {

using sys::Fd;
using sys::FdRef;
using sys::Result;

namespace {

bool is_overlay_xattr(std::string_view name) {
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

std::string proc_fd(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

std::string join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// The names of the xattrs of an fd (or of the inode behind a /proc/self/fd path).
Result<std::vector<std::string>> xattr_names(int fd, const std::string& path, const std::string& what) {
  auto list = [&](char* b, std::size_t n) { return fd >= 0 ? ::flistxattr(fd, b, n) : ::listxattr(path.c_str(), b, n); };
  ssize_t len = list(nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return std::vector<std::string>{};
    return sys::sys_error("listing xattrs of '{}'", what);
  }
  std::vector<char> buf(static_cast<std::size_t>(len) + 1);
  len = list(buf.data(), buf.size());
  if (len < 0) return sys::sys_error("listing xattrs of '{}'", what);
  std::vector<std::string> names;
  for (std::size_t off = 0; off < static_cast<std::size_t>(len); off += std::strlen(buf.data() + off) + 1)
    names.emplace_back(buf.data() + off);
  return names;
}

// A directory's opaque mark, in either spelling (root's or a user namespace's store).
bool is_opaque(int dir) {
  char v[2];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"})
    if (::fgetxattr(dir, name, v, sizeof v) == 1 && v[0] == 'y') return true;
  return false;
}

struct Flattener {
  Fd root;  // dest
  dev_t dev = 0;
  std::map<std::pair<dev_t, ino_t>, std::string> linked;  // first copy of each nlink>1 inode

  // Owner, xattrs (the lower layer's replaced, overlay's own left out), mode, times.
  // `out` is an fd of the copy or -1 (then `out_path` names it); the same for `in`.
  static Result<void> set_meta(int out, const std::string& out_path, int in, const std::string& in_path,
                               const struct stat& st, const std::string& what) {
    if ((out >= 0 ? ::fchown(out, st.st_uid, st.st_gid) : ::chown(out_path.c_str(), st.st_uid, st.st_gid)) != 0)
      return sys::sys_error("chown of the copy of '{}'", what);
    for (auto& n : POD_TRY(xattr_names(out, out_path, what)))
      if ((out >= 0 ? ::fremovexattr(out, n.c_str()) : ::removexattr(out_path.c_str(), n.c_str())) != 0 && errno != ENODATA)
        return sys::sys_error("removing xattr {} of '{}'", n, what);
    for (auto& n : POD_TRY(xattr_names(in, in_path, what))) {
      if (is_overlay_xattr(n)) continue;
      auto get = [&](void* b, std::size_t sz) {
        return in >= 0 ? ::fgetxattr(in, n.c_str(), b, sz) : ::getxattr(in_path.c_str(), n.c_str(), b, sz);
      };
      ssize_t len = get(nullptr, 0);
      if (len < 0) return sys::sys_error("reading xattr {} of '{}'", n, what);
      std::string v(static_cast<std::size_t>(len), '\0');
      len = get(v.data(), v.size());
      if (len < 0) return sys::sys_error("reading xattr {} of '{}'", n, what);
      auto size = static_cast<std::size_t>(len);
      if ((out >= 0 ? ::fsetxattr(out, n.c_str(), v.data(), size, 0) : ::setxattr(out_path.c_str(), n.c_str(), v.data(), size, 0)) != 0)
        return sys::sys_error("writing xattr {} of '{}'", n, what);
    }
    // After chown (which clears setuid bits) and after the xattrs (an ACL sets group bits).
    if ((out >= 0 ? ::fchmod(out, st.st_mode & 07777) : ::chmod(out_path.c_str(), st.st_mode & 07777)) != 0)
      return sys::sys_error("chmod of the copy of '{}'", what);
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if ((out >= 0 ? ::futimens(out, ts) : ::utimensat(AT_FDCWD, out_path.c_str(), ts, 0)) != 0)
      return sys::sys_error("times of the copy of '{}'", what);
    return {};
  }

  // A reflink where the filesystem can, else the data extents only (holes stay holes).
  static Result<void> copy_data(int in, int out, off_t size, const std::string& what) {
    if (::ioctl(out, FICLONE, in) == 0) return {};
    off_t pos = 0;
    while (pos < size) {
      off_t data = ::lseek(in, pos, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;
        return sys::sys_error("seeking data in '{}'", what);
      }
      off_t hole = ::lseek(in, data, SEEK_HOLE);
      if (hole < 0) return sys::sys_error("seeking a hole in '{}'", what);
      off_t ipos = data, opos = data;
      while (ipos < hole) {
        ssize_t n = ::copy_file_range(in, &ipos, out, &opos, static_cast<std::size_t>(hole - ipos), 0);
        if (n < 0) return sys::sys_error("copying '{}'", what);
        if (n == 0) break;
      }
      pos = hole;
    }
    if (::ftruncate(out, size) < 0) return sys::sys_error("sizing the copy of '{}'", what);
    return {};
  }

  static Result<void> empty_dir(int dir, const std::string& what) {
    DIR* d = ::fdopendir(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return sys::sys_error("reading '{}'", what);
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    for (auto& n : names) POD_TRY_CTX(sys::remove_tree(FdRef::from_raw(dir), n), "emptying '{}'", what);
    return {};
  }

  Result<void> merge_dir(int src, int dst, const std::string& path, int depth) {
    if (depth > 4096) return sys::make_error(ELOOP, "'{}' is too deep", path);
    // A fresh open: a dup would share (and move) the offset of the caller's fd.
    DIR* d = ::fdopendir(::openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return sys::sys_error("reading '{}'", path);
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    for (;;) {
      errno = 0;
      dirent* e = ::readdir(d);
      if (!e) {
        if (errno) return sys::sys_error("reading '{}'", path);
        return {};
      }
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      POD_TRY(entry(src, dst, join(path, n), e->d_name, depth));
    }
  }

  Result<void> entry(int src, int dst, const std::string& path, const char* name, int depth) {
    Fd pin(::openat(src, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!pin) return sys::sys_error("opening '{}'", path);
    struct stat st;
    if (::fstat(pin.get(), &st) < 0) return sys::sys_error("stat '{}'", path);
    if (st.st_dev != dev) return sys::make_error(EXDEV, "'{}' is on another filesystem than its layer", path);
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0)  // whiteout
      return sys::remove_tree(FdRef::from_raw(dst), name);
    struct stat old;
    bool exists = ::fstatat(dst, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
    if (!exists && errno != ENOENT) return sys::sys_error("stat of the copy of '{}'", path);
    if (S_ISDIR(st.st_mode)) {
      Fd in(::openat(pin.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!in) return sys::sys_error("opening '{}'", path);
      if (exists && !S_ISDIR(old.st_mode)) {
        POD_TRY(sys::remove_tree(FdRef::from_raw(dst), name));
        exists = false;
      }
      if (!exists && ::mkdirat(dst, name, 0700) < 0) return sys::sys_error("making '{}'", path);
      Fd out(::openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return sys::sys_error("opening the copy of '{}'", path);
      if (exists && is_opaque(in.get())) POD_TRY(empty_dir(out.get(), path));
      POD_TRY(merge_dir(in.get(), out.get(), path, depth + 1));
      return set_meta(out.get(), "", in.get(), "", st, path);
    }
    if (exists) POD_TRY(sys::remove_tree(FdRef::from_raw(dst), name));
    if (st.st_nlink > 1) {
      auto [it, fresh] = linked.try_emplace({st.st_dev, st.st_ino}, path);
      if (!fresh) return link(it->second, dst, name, path);
    }
    if (S_ISREG(st.st_mode)) {
      // Reopened through the pinned inode: never another file than the one checked.
      Fd in(::open(proc_fd(pin.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (!in) return sys::sys_error("opening '{}'", path);
      Fd out(::openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return sys::sys_error("creating the copy of '{}'", path);
      POD_TRY(copy_data(in.get(), out.get(), st.st_size, path));
      return set_meta(out.get(), "", in.get(), "", st, path);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(pin.get(), "", target.data(), target.size());
      if (n < 0) return sys::sys_error("reading the link '{}'", path);
      target.resize(static_cast<std::size_t>(n));
      if (::symlinkat(target.c_str(), dst, name) < 0) return sys::sys_error("making the link '{}'", path);
      if (::fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return sys::sys_error("chown of the link '{}'", path);
      timespec ts[2] = {st.st_atim, st.st_mtim};
      if (::utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return sys::sys_error("times of the link '{}'", path);
      return {};
    }
    // fifo, socket, device: made anew, never opened.
    if (::mknodat(dst, name, st.st_mode & (S_IFMT | 0600), st.st_rdev) < 0) return sys::sys_error("making '{}'", path);
    Fd out(::openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!out) return sys::sys_error("opening the copy of '{}'", path);
    return set_meta(-1, proc_fd(out.get()), -1, proc_fd(pin.get()), st, path);
  }

  // A second name of an inode of this layer: a link to its first copy, found below
  // dest without following any symlink.
  Result<void> link(const std::string& first, int dst, const char* name, const std::string& path) {
    Fd target = POD_TRY_CTX(sys::open_in(root, first, O_PATH | O_NOFOLLOW, sys::Resolve::beneath_no_symlinks),
                            "linking '{}' to '{}'", path, first);
    if (::linkat(AT_FDCWD, proc_fd(target.get()).c_str(), dst, name, AT_SYMLINK_FOLLOW) < 0)
      return sys::sys_error("linking '{}' to '{}'", path, first);
    return {};
  }

  Result<void> layer(FdRef src, std::size_t index) {
    struct stat st;
    if (::fstat(src.get(), &st) < 0) return sys::sys_error("stat of layer {}", index);
    dev = st.st_dev;
    linked.clear();  // hard links do not span layers, as in overlayfs
    if (is_opaque(src.get())) POD_TRY(empty_dir(root.get(), "/"));
    POD_TRY(merge_dir(src.get(), root.get(), "", 0));
    return set_meta(root.get(), "", src.get(), "", st, "/");
  }
};

}  // namespace

Result<void> flatten(std::span<const FdRef> lowers, FdRef dest, const ComposeOptions&) {
  Flattener f;
  f.root = Fd(::openat(dest.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!f.root) return sys::sys_error("flattening layers: opening the destination");
  for (std::size_t i = 0; i < lowers.size(); ++i)
    POD_TRY_CTX(f.layer(lowers[i], i + 1), "flattening layer {} of {}", i + 1, lowers.size());
  return {};
}

}  // namespace pod::overlay
