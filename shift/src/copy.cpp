#include "pod/shift/copy.hpp"

#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "walk.hpp"

namespace pod::shift {

namespace {

using sys::Fd;
using sys::Result;

struct Copier {
  dev_t dev = 0;
  Fd dst_root;
  std::map<std::pair<dev_t, ino_t>, std::string> linked;  // first path of each nlink>1 inode
  CopyStats stats;

  static std::string join(const std::string& d, std::string_view n) {
    return d.empty() ? std::string(n) : d + "/" + std::string(n);
  }

  // Every xattr, capabilities and ACLs included; after the chown, which would drop a
  // capability, and before the chmod, as an ACL sets the group bits.
  static Result<void> copy_xattrs(const char* src, int src_fd, const char* dst, int dst_fd, const std::string& path) {
    auto list = [&](char* b, std::size_t n) { return src_fd >= 0 ? ::flistxattr(src_fd, b, n) : ::llistxattr(src, b, n); };
    ssize_t len = list(nullptr, 0);
    if (len < 0) return errno == ENOTSUP ? Result<void>{} : sys::sys_error("listing xattrs of '{}'", path);
    std::vector<char> names(static_cast<std::size_t>(len) + 1);
    len = list(names.data(), names.size());
    if (len < 0) return sys::sys_error("listing xattrs of '{}'", path);
    for (std::size_t off = 0; off < static_cast<std::size_t>(len); off += std::strlen(names.data() + off) + 1) {
      const char* name = names.data() + off;
      auto get = [&](void* b, std::size_t n) { return src_fd >= 0 ? ::fgetxattr(src_fd, name, b, n) : ::lgetxattr(src, name, b, n); };
      ssize_t vl = get(nullptr, 0);
      if (vl < 0) return sys::sys_error("reading xattr {} of '{}'", name, path);
      std::string v(static_cast<std::size_t>(vl), '\0');
      vl = get(v.data(), v.size());
      if (vl < 0) return sys::sys_error("reading xattr {} of '{}'", name, path);
      int rc = dst_fd >= 0 ? ::fsetxattr(dst_fd, name, v.data(), static_cast<std::size_t>(vl), 0)
                           : ::lsetxattr(dst, name, v.data(), static_cast<std::size_t>(vl), 0);
      if (rc < 0) return sys::sys_error("writing xattr {} of '{}'", name, path);
    }
    return {};
  }

  // Data: a reflink, else the data extents only (SEEK_DATA/SEEK_HOLE), so holes stay holes.
  Result<void> copy_data(int in, int out, off_t size, const std::string& path) {
    if (::ioctl(out, FICLONE, in) == 0) {
      ++stats.reflinked;
      return {};
    }
    ++stats.copied;
    off_t pos = 0;
    while (pos < size) {
      off_t data = ::lseek(in, pos, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole remains
        return sys::sys_error("seeking data in '{}'", path);
      }
      off_t hole = ::lseek(in, data, SEEK_HOLE);
      if (hole < 0) return sys::sys_error("seeking a hole in '{}'", path);
      off_t ipos = data, opos = data;
      while (ipos < hole) {
        ssize_t n = ::copy_file_range(in, &ipos, out, &opos, static_cast<std::size_t>(hole - ipos), 0);
        if (n < 0) return sys::sys_error("copying '{}'", path);
        if (n == 0) break;
      }
      pos = hole;
    }
    if (::ftruncate(out, size) < 0) return sys::sys_error("sizing '{}'", path);
    return {};
  }

  Result<void> finish(int fd, const char* dst_path, int dst_dir, const char* name, const struct stat& st, const std::string& path,
                      const char* src_path, int src_fd) {
    bool lnk = S_ISLNK(st.st_mode);
    if (fd >= 0 ? ::fchown(fd, st.st_uid, st.st_gid) : ::fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW))
      return sys::sys_error("chown of the copy of '{}'", path);
    if (!lnk) {
      POD_TRY(copy_xattrs(src_path, src_fd, dst_path, fd, path));
      if (fd >= 0 ? ::fchmod(fd, st.st_mode & 07777) : ::fchmodat(dst_dir, name, st.st_mode & 07777, 0))
        return sys::sys_error("chmod of the copy of '{}'", path);
    }
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW))
      return sys::sys_error("times of the copy of '{}'", path);
    return {};
  }

  Result<void> dir(int src, int dst, const std::string& path, int depth) {
    if (depth > 4096) return sys::make_error(ELOOP, "'{}' is too deep", path);
    // A fresh open, not dup: a dup shares the offset of the caller's fd, which an earlier
    // walk may have left at the end.
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
    if (st.st_dev != dev) return sys::make_error(EXDEV, "'{}' is on another filesystem", path);
    ++stats.inodes;
    detail::ProcPath pp(pin.get());
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, fresh] = linked.try_emplace({st.st_dev, st.st_ino}, path);
      if (!fresh) {
        if (::linkat(dst_root.get(), it->second.c_str(), dst, name, 0) < 0) return sys::sys_error("linking '{}'", path);
        ++stats.links;
        return {};
      }
    }
    if (S_ISDIR(st.st_mode)) {
      Fd in(::openat(pin.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!in) return sys::sys_error("opening '{}'", path);
      if (::mkdirat(dst, name, 0700) < 0) return sys::sys_error("making '{}'", path);
      Fd out(::openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return sys::sys_error("opening the copy of '{}'", path);
      POD_TRY(dir(in.get(), out.get(), path, depth + 1));
      return finish(out.get(), nullptr, dst, name, st, path, nullptr, in.get());
    }
    if (S_ISREG(st.st_mode)) {
      // Reopened through the pinned inode: never a different file than the one checked.
      Fd in(::open(pp.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (!in) return sys::sys_error("opening '{}'", path);
      Fd out(::openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return sys::sys_error("creating the copy of '{}'", path);
      POD_TRY(copy_data(in.get(), out.get(), st.st_size, path));
      return finish(out.get(), nullptr, dst, name, st, path, nullptr, in.get());
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(pin.get(), "", target.data(), target.size());
      if (n < 0) return sys::sys_error("reading the link '{}'", path);
      target.resize(static_cast<std::size_t>(n));
      if (::symlinkat(target.c_str(), dst, name) < 0) return sys::sys_error("making the link '{}'", path);
      return finish(-1, nullptr, dst, name, st, path, nullptr, -1);
    }
    // fifo, socket, device node: made anew, never opened.
    if (::mknodat(dst, name, st.st_mode & (S_IFMT | 0600), st.st_rdev) < 0) return sys::sys_error("making '{}'", path);
    Fd out(::openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!out) return sys::sys_error("opening the copy of '{}'", path);
    detail::ProcPath op(out.get());
    std::string dst_path = op.c_str();
    if (::fchownat(out.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH) < 0) return sys::sys_error("chown of '{}'", path);
    POD_TRY(copy_xattrs(pp.c_str(), -1, dst_path.c_str(), -1, path));
    if (::fchmodat(AT_FDCWD, dst_path.c_str(), st.st_mode & 07777, 0) < 0) return sys::sys_error("chmod of '{}'", path);
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return sys::sys_error("times of '{}'", path);
    return {};
  }
};

}  // namespace

Result<CopyStats> copy_tree(sys::FdRef src, sys::FdRef dst_dir, std::string_view name) {
  std::string n(name);
  struct stat st;
  if (::fstat(src.get(), &st) < 0) return sys::sys_error("stat of the tree to copy");
  if (::mkdirat(dst_dir.get(), n.c_str(), 0700) < 0) return sys::sys_error("making '{}'", n);
  Copier c;
  c.dev = st.st_dev;
  c.dst_root = Fd(::openat(dst_dir.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!c.dst_root) return sys::sys_error("opening '{}'", n);
  c.stats.inodes = 1;
  POD_TRY(c.dir(src.get(), c.dst_root.get(), "", 0));
  POD_TRY(c.finish(c.dst_root.get(), nullptr, dst_dir.get(), n.c_str(), st, ".", nullptr, src.get()));
  return c.stats;
}

}  // namespace pod::shift
