#include "pod/shift/copy.hpp"

#include <dirent.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dir_pool.hpp"
#include "pod/shift/xattrs.hpp"
#include "walk.hpp"

namespace pod::shift {

namespace {

using sys::Fd;
using sys::Result;

constexpr const char* kMetacopy = "trusted.overlay.metacopy";

// A directory's opaque mark would stop overlayfs before the source's entries, where the
// data of the metacopy files is; the source keeps its own mark, so it still applies.
bool opaque_mark(const char* name) {
  return std::strcmp(name, "trusted.overlay.opaque") == 0 || std::strcmp(name, "user.overlay.opaque") == 0;
}

// Each worker makes its copies as their owners (its fsuid and fsgid), so that no chown
// follows: one update of every new inode less, which is most of a first chown pod's
// time. Leaving fsuid 0 drops the thread's effective filesystem capabilities (it makes
// copies in directories of other owners): they are raised again from its permitted set.
// True: what the thread makes now is owned by uid:gid.
bool make_as(uid_t uid, gid_t gid) {
  thread_local uid_t cur_uid = 0;
  thread_local gid_t cur_gid = 0;
  thread_local bool valid = false;
  if (valid && cur_uid == uid && cur_gid == gid) return true;
  ::setfsgid(gid);
  ::setfsuid(uid);
  // Each returns the value before the call: -1 changes nothing and reads it.
  valid = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) == uid &&
          static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))) == gid;
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &h, d) != 0) return valid = false;
  for (auto& c : d) c.effective = c.permitted;
  if (::syscall(SYS_capset, &h, d) != 0) return valid = false;
  cur_uid = uid;
  cur_gid = gid;
  return valid;
}

// A directory to copy: both sides open, the source's stat for finishing the copy.
struct DirItem {
  Fd src, dst;
  std::string path;
  int depth = 0;
  struct stat st {};
  bool owned = false;  // made as its owner: no chown
};

// The names of an inode with several: the first name met makes the copy, the others
// (perhaps on other threads) wait for it and link to it.
struct LinkedInode {
  enum class State { making, made, failed };
  std::string first;
  State state = State::making;
};

struct Copier {
  dev_t dev = 0;
  CopyData contents = CopyData::full;
  const Shift* shift = nullptr;
  Unmapped unmapped = Unmapped::error;
  mode_t umask_ = 022;
  Fd dst_root;
  std::mutex link_mu;
  std::condition_variable link_cv;
  std::map<std::pair<dev_t, ino_t>, LinkedInode> linked;  // guarded by link_mu
  std::atomic<std::uint64_t> inodes{0}, reflinked{0}, copied{0}, links{0};
  detail::DirPool<DirItem> pool{[this](DirItem it) { return dir(std::move(it)); }};

  static std::string join(const std::string& d, std::string_view n) {
    return d.empty() ? std::string(n) : d + "/" + std::string(n);
  }

  // The id a copy gets: the source's, or shifted.
  Result<std::uint32_t> shifted(const KindShift& k, std::uint32_t id, const char* kind, const std::string& path) const {
    auto a = k.map(id, false);
    if (a.verdict == KindShift::Verdict::shift) return a.id;
    if (unmapped == Unmapped::overflow) return kOverflowId;
    return sys::make_error(ERANGE, "'{}': {} {} is outside the source map", path, kind, id);
  }

  // A capability or ACL value with its ids shifted (the value itself when not shifting).
  Result<std::string> shifted_xattr(const char* name, std::string value, const std::string& path) const {
    bool cap = std::strcmp(name, kCapXattr) == 0;
    if (!shift || (!cap && std::strcmp(name, kAclAccess) != 0 && std::strcmp(name, kAclDefault) != 0)) return value;
    Rewrite w = cap ? rewrite_capability(value, *shift, false, unmapped) : rewrite_acl(value, *shift, false, unmapped);
    if (w.status == Rewrite::Status::unmapped || w.status == Rewrite::Status::invalid)
      return sys::make_error(ERANGE, "'{}': {}: {}", path, name, w.problem);
    return w.status == Rewrite::Status::changed ? std::move(w.value) : value;
  }

  // Every xattr, capabilities and ACLs included; after the chown, which would drop a
  // capability, and before the chmod, as an ACL sets the group bits. Without an open fd
  // (fifos, sockets, device nodes), src and dst are /proc/self/fd paths of O_PATH fds:
  // followed, they name those very inodes (not followed, the proc links themselves).
  Result<void> copy_xattrs(const char* src, int src_fd, const char* dst, int dst_fd, const std::string& path) const {
    auto list = [&](char* b, std::size_t n) { return src_fd >= 0 ? ::flistxattr(src_fd, b, n) : ::listxattr(src, b, n); };
    // One call for the usual short list; the size is asked only for a longer one.
    std::vector<char> names(1024);
    ssize_t len = list(names.data(), names.size());
    if (len < 0 && errno == ERANGE) {
      len = list(nullptr, 0);
      if (len >= 0) {
        names.resize(static_cast<std::size_t>(len) + 1);
        len = list(names.data(), names.size());
      }
    }
    if (len < 0) return errno == ENOTSUP ? Result<void>{} : sys::sys_error("listing xattrs of '{}'", path);
    for (std::size_t off = 0; off < static_cast<std::size_t>(len); off += std::strlen(names.data() + off) + 1) {
      const char* name = names.data() + off;
      if (contents == CopyData::metacopy && opaque_mark(name)) continue;
      auto get = [&](void* b, std::size_t n) { return src_fd >= 0 ? ::fgetxattr(src_fd, name, b, n) : ::getxattr(src, name, b, n); };
      ssize_t vl = get(nullptr, 0);
      if (vl < 0) return sys::sys_error("reading xattr {} of '{}'", name, path);
      std::string v(static_cast<std::size_t>(vl), '\0');
      vl = get(v.data(), v.size());
      if (vl < 0) return sys::sys_error("reading xattr {} of '{}'", name, path);
      v.resize(static_cast<std::size_t>(vl));
      v = POD_TRY(shifted_xattr(name, std::move(v), path));
      int rc = dst_fd >= 0 ? ::fsetxattr(dst_fd, name, v.data(), v.size(), 0) : ::setxattr(dst, name, v.data(), v.size(), 0);
      if (rc < 0) return sys::sys_error("writing xattr {} of '{}'", name, path);
    }
    return {};
  }

  // Data: a reflink, else the data extents only (SEEK_DATA/SEEK_HOLE), so holes stay holes.
  Result<void> copy_data(int in, int out, off_t size, const std::string& path) {
    if (::ioctl(out, FICLONE, in) == 0) {
      ++reflinked;
      return {};
    }
    ++copied;
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

  Result<std::pair<uid_t, gid_t>> owner(const struct stat& st, const std::string& path) const {
    if (!shift) return std::pair{st.st_uid, st.st_gid};
    return std::pair{POD_TRY(shifted(shift->uids, st.st_uid, "uid", path)),
                     POD_TRY(shifted(shift->gids, st.st_gid, "gid", path))};
  }

  // `created`: the mode the copy was made with. A chmod is needed when that is not the
  // source's, setuid and setgid bits always (the chown clears them).
  // `owned`: made as its owner already (make_as), no chown.
  Result<void> finish(int fd, const char* dst_path, int dst_dir, const char* name, const struct stat& st, const std::string& path,
                      const char* src_path, int src_fd, mode_t created, bool owned) {
    bool lnk = S_ISLNK(st.st_mode);
    if (!owned) {
      auto [uid, gid] = POD_TRY(owner(st, path));
      if (fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(dst_dir, name, uid, gid, AT_SYMLINK_NOFOLLOW))
        return sys::sys_error("chown of the copy of '{}'", path);
    }
    if (!lnk) {
      // An access ACL sets the group bits to its mask, which the source's mode has too.
      POD_TRY(copy_xattrs(src_path, src_fd, dst_path, fd, path));
      if ((st.st_mode & 07777) != created &&
          (fd >= 0 ? ::fchmod(fd, st.st_mode & 07777) : ::fchmodat(dst_dir, name, st.st_mode & 07777, 0)))
        return sys::sys_error("chmod of the copy of '{}'", path);
    }
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW))
      return sys::sys_error("times of the copy of '{}'", path);
    return {};
  }

  // The entries of a directory, then the directory itself (its times last, after the
  // entries made in it). Subdirectories may still be in the making on other threads.
  Result<void> dir(DirItem it) {
    if (it.depth > 4096) return sys::make_error(ELOOP, "'{}' is too deep", it.path);
    std::string shown = it.path.empty() ? "." : it.path;
    // A fresh open, not dup: a dup shares the offset of the caller's fd, which an earlier
    // walk may have left at the end.
    DIR* d = ::fdopendir(::openat(it.src.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return sys::sys_error("reading '{}'", shown);
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    int src = it.src.get(), dst = it.dst.get();
    for (;;) {
      if (pool.stopped()) return {};
      errno = 0;
      dirent* e = ::readdir(d);
      if (!e) {
        if (errno) return sys::sys_error("reading '{}'", shown);
        break;
      }
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      if (e->d_type == DT_REG)
        POD_TRY(regular(src, dst, join(it.path, n), e->d_name));
      else
        POD_TRY(entry(src, dst, join(it.path, n), e->d_name, it.depth));
    }
    return finish(dst, nullptr, -1, nullptr, it.st, shown, nullptr, src, 0700 & ~umask_, it.owned);
  }

  // Another name of an inode copied (or being copied) already: linked, true. The first
  // name: false, and the caller reports with made() once the copy is done or failed.
  Result<bool> linked_again(const struct stat& st, int dst, const char* name, const std::string& path) {
    if (S_ISDIR(st.st_mode) || st.st_nlink < 2) return false;
    std::unique_lock l(link_mu);
    auto [it, fresh] = linked.try_emplace({st.st_dev, st.st_ino}, LinkedInode{path});
    if (fresh) return false;
    link_cv.wait(l, [&] { return it->second.state != LinkedInode::State::making; });
    if (it->second.state == LinkedInode::State::failed)
      return sys::make_error(EIO, "'{}': its other name '{}' could not be copied", path, it->second.first);
    std::string first = it->second.first;
    l.unlock();
    if (::linkat(dst_root.get(), first.c_str(), dst, name, 0) < 0) return sys::sys_error("linking '{}'", path);
    ++links;
    return true;
  }

  Result<void> made(const struct stat& st, Result<void> r) {
    if (S_ISDIR(st.st_mode) || st.st_nlink < 2) return r;
    {
      std::lock_guard l(link_mu);
      linked[{st.st_dev, st.st_ino}].state = r ? LinkedInode::State::made : LinkedInode::State::failed;
    }
    link_cv.notify_all();
    return r;
  }

  // A regular file, opened by name (readdir said so; never a fifo's open that blocks, and
  // what it turns out to be is checked before anything is made).
  Result<void> regular(int src, int dst, const std::string& path, const char* name) {
    Fd in(::openat(src, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    if (!in) return sys::sys_error("opening '{}'", path);
    struct stat st;
    if (::fstat(in.get(), &st) < 0) return sys::sys_error("stat '{}'", path);
    if (!S_ISREG(st.st_mode)) return sys::make_error(EAGAIN, "'{}' changed while it was copied", path);
    if (st.st_dev != dev) return sys::make_error(EXDEV, "'{}' is on another filesystem", path);
    ++inodes;
    if (POD_TRY(linked_again(st, dst, name, path))) return {};
    return made(st, regular_copy(in.get(), st, dst, name, path));
  }

  Result<void> regular_copy(int in, const struct stat& st, int dst, const char* name, const std::string& path) {
    mode_t created = st.st_mode & 0777 & ~umask_;
    auto [uid, gid] = POD_TRY(owner(st, path));
    bool owned = make_as(uid, gid);
    Fd out(::openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, created));
    if (!out) return sys::sys_error("creating the copy of '{}'", path);
    if (contents == CopyData::metacopy) {
      // Size without blocks, as overlayfs's own metadata-only copy-up leaves it.
      if (::ftruncate(out.get(), st.st_size) < 0) return sys::sys_error("sizing the copy of '{}'", path);
      if (::fsetxattr(out.get(), kMetacopy, "", 0, 0) < 0) return sys::sys_error("marking the copy of '{}'", path);
    } else {
      POD_TRY(copy_data(in, out.get(), st.st_size, path));
    }
    return finish(out.get(), nullptr, dst, name, st, path, nullptr, in, created, owned);
  }

  Result<void> entry(int src, int dst, const std::string& path, const char* name, int depth) {
    Fd pin(::openat(src, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!pin) return sys::sys_error("opening '{}'", path);
    struct stat st;
    if (::fstat(pin.get(), &st) < 0) return sys::sys_error("stat '{}'", path);
    if (st.st_dev != dev) return sys::make_error(EXDEV, "'{}' is on another filesystem", path);
    ++inodes;
    if (S_ISDIR(st.st_mode)) {
      DirItem child{Fd(::openat(pin.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)), {}, path, depth + 1, st};
      if (!child.src) return sys::sys_error("opening '{}'", path);
      auto [uid, gid] = POD_TRY(owner(st, path));
      child.owned = make_as(uid, gid);
      if (::mkdirat(dst, name, 0700) < 0) return sys::sys_error("making '{}'", path);
      child.dst = Fd(::openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.dst) return sys::sys_error("opening the copy of '{}'", path);
      if (pool.offer(child)) return {};
      return dir(std::move(child));
    }
    if (POD_TRY(linked_again(st, dst, name, path))) return {};
    return made(st, other(pin.get(), st, dst, name, path));
  }

  // A regular file reached by its pinned inode, a symlink, a fifo, socket or device node.
  Result<void> other(int pin, const struct stat& st, int dst, const char* name, const std::string& path) {
    detail::ProcPath pp(pin);
    if (S_ISREG(st.st_mode)) {
      // Reopened through the pinned inode: never a different file than the one checked.
      Fd in(::open(pp.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (!in) return sys::sys_error("opening '{}'", path);
      return regular_copy(in.get(), st, dst, name, path);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(pin, "", target.data(), target.size());
      if (n < 0) return sys::sys_error("reading the link '{}'", path);
      target.resize(static_cast<std::size_t>(n));
      auto [uid, gid] = POD_TRY(owner(st, path));
      bool owned = make_as(uid, gid);
      if (::symlinkat(target.c_str(), dst, name) < 0) return sys::sys_error("making the link '{}'", path);
      return finish(-1, nullptr, dst, name, st, path, nullptr, -1, 0, owned);
    }
    // fifo, socket, device node: made anew, never opened.
    if (::mknodat(dst, name, st.st_mode & (S_IFMT | 0600), st.st_rdev) < 0) return sys::sys_error("making '{}'", path);
    Fd out(::openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!out) return sys::sys_error("opening the copy of '{}'", path);
    detail::ProcPath op(out.get());
    std::string dst_path = op.c_str();
    auto [uid, gid] = POD_TRY(owner(st, path));
    if (::fchownat(out.get(), "", uid, gid, AT_EMPTY_PATH) < 0) return sys::sys_error("chown of '{}'", path);
    POD_TRY(copy_xattrs(pp.c_str(), -1, dst_path.c_str(), -1, path));
    if (::fchmodat(AT_FDCWD, dst_path.c_str(), st.st_mode & 07777, 0) < 0) return sys::sys_error("chmod of '{}'", path);
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return sys::sys_error("times of '{}'", path);
    return {};
  }
};

}  // namespace

Result<CopyStats> copy_tree(sys::FdRef src, sys::FdRef dst_dir, std::string_view name, const CopyOptions& options) {
  std::string n(name);
  DirItem top;
  top.src = Fd(::openat(src.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!top.src || ::fstat(top.src.get(), &top.st) < 0) return sys::sys_error("opening the tree to copy");
  if (::mkdirat(dst_dir.get(), n.c_str(), 0700) < 0) return sys::sys_error("making '{}'", n);
  Copier c;
  c.dev = top.st.st_dev;
  c.umask_ = ::umask(0);  // read, and put back at once: the mode new files are made with
  ::umask(c.umask_);
  c.contents = options.data;
  c.shift = options.shift;
  c.unmapped = options.unmapped;
  c.dst_root = Fd(::openat(dst_dir.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  top.dst = Fd(::openat(dst_dir.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!c.dst_root || !top.dst) return sys::sys_error("opening '{}'", n);
  c.inodes = 1;
  // The workers wait (on the journal, on inode tables) about as long as they run: four
  // per core keep the cores busy. A first chown pod of Debian's image on 2 cores, A/B
  // of 10 each: 2 workers ~119 ms, 4 ~100 ms, 8 ~92 ms.
  unsigned threads =
      options.threads ? options.threads : std::clamp(4 * std::thread::hardware_concurrency(), 4u, 32u);
  // A change of fsuid (make_as) makes the whole process not dumpable, which would hand
  // its /proc files, and those of the children it makes later (a pod's init, whose
  // uid_map we write), to root: put back what it was once the workers are gone.
  const int dumpable = ::prctl(PR_GET_DUMPABLE);
  auto ran = c.pool.run(std::move(top), threads);
  if (dumpable > 0 && ::prctl(PR_GET_DUMPABLE) != dumpable) (void)::prctl(PR_SET_DUMPABLE, dumpable);
  POD_TRY(std::move(ran));
  return CopyStats{c.inodes.load(), c.reflinked.load(), c.copied.load(), c.links.load()};
}

}  // namespace pod::shift
