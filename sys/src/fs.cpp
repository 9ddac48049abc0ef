#include <dirent.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <vector>

#include "pod/sys/fs.hpp"

namespace pod::sys {

Result<Fd> open_at(FdRef dir, std::string_view path, int flags, mode_t mode) {
  std::string p(path);
  int fd = ::openat(dir.get(), p.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return sys_error("open '{}'", path);
  return Fd(fd);
}

Result<Fd> open_dir(FdRef dir, std::string_view path) {
  return open_at(dir, path, O_RDONLY | O_DIRECTORY);
}

Result<struct stat> stat_at(FdRef dir, std::string_view path, int flags) {
  struct stat st;
  std::string p(path);
  if (::fstatat(dir.get(), p.c_str(), &st, flags) != 0) return sys_error("stat '{}'", path);
  return st;
}

Result<struct stat> stat_fd(FdRef fd) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return sys_error("fstat");
  return st;
}

bool exists_at(FdRef dir, std::string_view path) {
  struct stat st;
  std::string p(path);
  return ::fstatat(dir.get(), p.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<void> ensure_dir(FdRef dir, std::string_view name, mode_t mode) {
  std::string n(name);
  if (::mkdirat(dir.get(), n.c_str(), mode) == 0) return {};
  if (errno != EEXIST) return sys_error("mkdir '{}'", name);
  struct stat st;
  if (::fstatat(dir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("stat '{}'", name);
  if (!S_ISDIR(st.st_mode)) return make_error(ENOTDIR, "'{}' exists and is not a directory", name);
  return {};
}

Result<Fd> make_dirs(std::string_view path, mode_t mode) {
  Fd cur = POD_TRY(open_dir(FdRef::cwd(), path.starts_with('/') ? "/" : "."));
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    POD_TRY(ensure_dir(cur, part, mode));
    cur = POD_TRY(open_dir(cur, part));
  }
  return cur;
}

Result<std::string> read_fd(FdRef fd, std::size_t limit) {
  std::string out;
  std::array<char, 65536> buf;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read");
    }
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > limit)
      return make_error(EFBIG, "larger than the limit of {} bytes", limit);
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
}

Result<std::string> read_file(FdRef dir, std::string_view path, std::size_t limit) {
  Fd fd = POD_TRY(open_at(dir, path, O_RDONLY | O_NOFOLLOW));
  return POD_TRY_CTX(read_fd(fd, limit), "reading '{}'", path);
}

Result<void> write_all(FdRef fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> fsync_fd(FdRef fd) {
  if (::fsync(fd.get()) != 0) return sys_error("fsync");
  return {};
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

Result<void> write_file_atomic(FdRef dir, std::string_view name, std::string_view data, mode_t mode, Sync sync) {
  std::string tmp = fmt::format(".{}.tmp-{}", name, random_hex(6));
  std::string final_name(name);
  Fd fd = POD_TRY(open_at(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode));
  auto fail = [&](Error e) -> Result<void> {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return Unexpected(std::move(e).context("writing '{}'", name));
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(sys_error("fchmod").error());
  if (auto r = write_all(fd, data); !r) return fail(r.error());
  if (sync == Sync::yes)
    if (auto r = fsync_fd(fd); !r) return fail(r.error());
  fd.reset();
  if (sync == Sync::no) {
    // Swapping the names and removing the old file is as atomic for readers, and spares
    // ext4's flush of the new file's data on a rename over an existing one (auto_da_alloc,
    // about 0.2 ms here), which Sync::no does not want.
    if (::renameat2(dir.get(), tmp.c_str(), dir.get(), final_name.c_str(), RENAME_EXCHANGE) == 0) {
      if (::unlinkat(dir.get(), tmp.c_str(), 0) == 0) return {};
      Error e = sys_error("removing the former '{}'", name).error();
      ::renameat2(dir.get(), tmp.c_str(), dir.get(), final_name.c_str(), RENAME_EXCHANGE);
      return fail(std::move(e));
    }
    if (errno != ENOENT && errno != EINVAL) return fail(sys_error("rename").error());
  }
  if (::renameat(dir.get(), tmp.c_str(), dir.get(), final_name.c_str()) != 0)
    return fail(sys_error("rename").error());
  if (sync == Sync::yes) POD_TRY_CTX(fsync_fd(dir), "syncing the directory of '{}'", name);
  return {};
}

Result<std::string> fd_path(FdRef fd) {
  char buf[PATH_MAX];
  auto link = fmt::format("/proc/self/fd/{}", fd.get());
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return sys_error("readlink {}", link);
  if (static_cast<std::size_t>(n) == sizeof buf - 1) return make_error(ENAMETOOLONG, "the path of {} is too long", link);
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<std::string> make_temp_dir(FdRef dir, std::string_view prefix, mode_t mode) {
  for (int i = 0; i < 16; ++i) {
    std::string name = fmt::format("{}{}", prefix, random_hex(6));
    if (::mkdirat(dir.get(), name.c_str(), mode) == 0) return name;
    if (errno != EEXIST) return sys_error("mkdir '{}'", name);
  }
  return make_error(EEXIST, "no free temporary name with prefix '{}'", prefix);
}

namespace {

// Makes a directory we own readable and writable by us, as rm -rf does not but an image
// needs: layers hold 0555 and 0000 directories. AT_SYMLINK_NOFOLLOW: if `name` was
// swapped for a symlink since it was checked, nothing outside is changed.
bool make_ours(int dirfd, const char* name) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) return false;
  const mode_t mode = (st.st_mode & 07777) | 0700;
  if (::fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0) return true;
  // glibc says EOPNOTSUPP for a symlink, and also when /proc is not mounted (it goes
  // through /proc/self/fd before fchmodat2, Linux 6.6): then chmod, if still a directory.
  if (errno != EOPNOTSUPP) return false;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) return false;
  return ::fchmodat(dirfd, name, mode, 0) == 0;
}

// unlinkat, retrying once after making the directory writable when that is the reason.
int unlink_in(int dirfd, const char* name, int flags, bool& dir_made_writable) {
  int r = ::unlinkat(dirfd, name, flags);
  if (r != 0 && errno == EACCES && !dir_made_writable) {
    dir_made_writable = true;
    struct stat st;
    if (::fstat(dirfd, &st) == 0 && ::fchmod(dirfd, (st.st_mode & 07777) | 0700) == 0)
      r = ::unlinkat(dirfd, name, flags);
    else
      errno = EACCES;
  }
  return r;
}

// Empties the directory open as `dirfd` (device `dev`), depth first, by descriptors.
Result<void> empty_dir(int dirfd, dev_t dev, int depth) {
  if (depth > 4096) return make_error(ELOOP, "directory tree too deep to remove");
  int dupfd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return sys_error("dup");
  DIR* d = ::fdopendir(dupfd);
  if (!d) {
    ::close(dupfd);
    return sys_error("fdopendir");
  }
  Result<void> result;
  bool writable = false;
  while (result) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (!e) {
      if (errno) result = sys_error("readdir");
      break;
    }
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    struct stat st;
    if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) result = sys_error("stat '{}'", n);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {
        result = make_error(EXDEV, "'{}' is another filesystem (a mount?); not removing it", n);
        break;
      }
      int sub = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 && errno == EACCES) {
        // We own it but cannot read it (mode 0): make it ours to read, as rm -rf would.
        if (make_ours(dirfd, e->d_name))
          sub = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        else
          errno = EACCES;
      }
      if (sub < 0) {
        result = sys_error("open '{}'", n);
        break;
      }
      Fd subfd(sub);
      if (auto r = empty_dir(subfd.get(), dev, depth + 1); !r) {
        result = Unexpected(std::move(r.error()).context("{}", n));
        break;
      }
      if (unlink_in(dirfd, e->d_name, AT_REMOVEDIR, writable) != 0 && errno != ENOENT)
        result = sys_error("rmdir '{}'", n);
    } else if (unlink_in(dirfd, e->d_name, 0, writable) != 0 && errno != ENOENT) {
      result = sys_error("unlink '{}'", n);
    }
  }
  ::closedir(d);
  return result;
}

}  // namespace

Result<void> remove_tree(FdRef dir, std::string_view name) {
  std::string n(name);
  struct stat st;
  if (::fstatat(dir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return sys_error("stat '{}'", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir.get(), n.c_str(), 0) != 0 && errno != ENOENT) return sys_error("unlink '{}'", name);
    return {};
  }
  int fd = ::openat(dir.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && make_ours(dir.get(), n.c_str()))
    fd = ::openat(dir.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return sys_error("open '{}'", name);
  Fd sub(fd);
  POD_TRY_CTX(empty_dir(sub.get(), st.st_dev, 0), "removing '{}'", name);
  if (::unlinkat(dir.get(), n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return sys_error("rmdir '{}'", name);
  return {};
}

Result<std::vector<std::string>> list_dir(FdRef dir) {
  int fd = ::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error("open directory");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return sys_error("fdopendir");
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (!e) break;
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err) return make_error(err, "reading a directory");
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace pod::sys
