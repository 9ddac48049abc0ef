// Resolution inside a root: openat2 where the kernel has it (5.6+), else a walk.
#include <linux/openat2.h>
#include <sys/syscall.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "pod/sys/fs.hpp"

namespace pod::sys {
namespace {

std::atomic<bool> g_force_fallback{false};
constexpr int kMaxSymlinks = 40;  // as the kernel's MAXSYMLINKS

long raw_openat2(int dir, const char* path, open_how* how) {
  return ::syscall(SYS_openat2, dir, path, how, sizeof(*how));
}

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

// The walk: keeps a stack of O_PATH fds from the root, so ".." never needs the kernel.
Result<Fd> walk(FdRef root, std::string_view path, int flags, Resolve how, mode_t mode) {
  std::vector<Fd> stack;
  auto current = [&]() -> int { return stack.empty() ? root.get() : stack.back().get(); };
  std::vector<std::string> todo = split(path);
  std::reverse(todo.begin(), todo.end());  // pop from the back
  int links = 0;
  const bool absolute_start = !path.empty() && path.front() == '/';
  if (absolute_start && how != Resolve::in_root)
    return make_error(EXDEV, "'{}' is absolute", path);
  // A trailing slash asks for a directory, as in the kernel: "file/" is ENOTDIR, and
  // creating "name/" is EISDIR. split() drops the slash, so say it with the flags.
  if (path.size() > 1 && path.back() == '/') {
    if (flags & O_CREAT) return make_error(EISDIR, "open '{}'", path);
    flags |= O_DIRECTORY;
  }

  while (!todo.empty()) {
    std::string part = std::move(todo.back());
    todo.pop_back();
    const bool last = todo.empty();
    if (part == ".") {
      if (last) break;
      continue;
    }
    if (part == "..") {
      if (stack.empty()) {
        if (how != Resolve::in_root) return make_error(EXDEV, "'{}' leaves its root", path);
      } else {
        stack.pop_back();
      }
      if (last) break;
      continue;
    }
    if (last) {
      // Open the final component for real; O_NOFOLLOW tells us if it is a symlink.
      int fd = ::openat(current(), part.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd >= 0) {
        Fd opened(fd);
        // O_PATH|O_NOFOLLOW succeeds on a symlink, opening the link itself: right only
        // when the caller asked for O_NOFOLLOW; otherwise the link is followed below.
        if (!(flags & O_PATH) || (flags & O_NOFOLLOW)) return opened;
        struct stat st;
        if (::fstat(opened.get(), &st) != 0) return sys_error("stat '{}'", path);
        if (!S_ISLNK(st.st_mode)) return opened;
      } else {
        int err = errno;
        if (err != ELOOP && !(err == ENOTDIR && (flags & O_DIRECTORY)))
          return make_error(err, "open '{}'", path);
        // ELOOP (or ENOTDIR with O_DIRECTORY): maybe a symlink to follow.
        struct stat st;
        if (::fstatat(current(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
          return make_error(err, "open '{}'", path);
        if ((flags & O_NOFOLLOW) && !(flags & O_PATH)) return make_error(ELOOP, "open '{}'", path);
        if (flags & O_NOFOLLOW) {  // O_PATH|O_NOFOLLOW opens the link itself
          fd = ::openat(current(), part.c_str(), flags | O_CLOEXEC, mode);
          if (fd < 0) return sys_error("open '{}'", path);
          return Fd(fd);
        }
      }
    }
    int fd = ::openat(current(), part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return sys_error("open '{}'", path);
    Fd next(fd);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return sys_error("stat '{}'", path);
    if (S_ISLNK(st.st_mode)) {
      if (how == Resolve::beneath_no_symlinks)
        return make_error(ELOOP, "'{}' passes through symlink '{}'", path, part);
      if (++links > kMaxSymlinks) return make_error(ELOOP, "too many symlinks in '{}'", path);
      char buf[4096];
      ssize_t n = ::readlinkat(next.get(), "", buf, sizeof buf);
      if (n < 0) return sys_error("readlink '{}'", part);
      std::string_view target(buf, static_cast<std::size_t>(n));
      if (!target.empty() && target.front() == '/') {
        if (how != Resolve::in_root)
          return make_error(EXDEV, "'{}': symlink '{}' points outside its root", path, part);
        stack.clear();
      }
      auto parts = split(target);
      if (last && parts.empty()) parts.emplace_back(".");
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(std::move(*it));
      continue;
    }
    if (!S_ISDIR(st.st_mode) && !last) return make_error(ENOTDIR, "open '{}'", path);
    stack.push_back(std::move(next));
  }
  // The path ended on a directory reached by "." / ".." / a symlink: reopen it.
  int fd = ::openat(current(), ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
  if (fd < 0) return sys_error("open '{}'", path);
  return Fd(fd);
}

}  // namespace

void force_resolve_fallback(bool on) { g_force_fallback = on; }

Result<Fd> open_in(FdRef root, std::string_view path, int flags, Resolve how, mode_t mode) {
  if (!g_force_fallback) {
    open_how oh{};
    oh.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    oh.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    oh.resolve = RESOLVE_NO_MAGICLINKS;
    switch (how) {
      case Resolve::in_root: oh.resolve |= RESOLVE_IN_ROOT; break;
      case Resolve::beneath: oh.resolve |= RESOLVE_BENEATH; break;
      case Resolve::beneath_no_symlinks: oh.resolve |= RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS; break;
    }
    std::string p(path.empty() ? "." : path);
    for (int tries = 0; tries < 8; ++tries) {
      long fd = raw_openat2(root.get(), p.c_str(), &oh);
      if (fd >= 0) return Fd(static_cast<int>(fd));
      if (errno == EAGAIN) continue;  // a rename raced the lookup; try again
      if (errno == ENOSYS) break;
      if (errno == EXDEV) return make_error(EXDEV, "'{}' leaves its root", path);
      if (errno == ELOOP && how == Resolve::beneath_no_symlinks)
        return make_error(ELOOP, "'{}' passes through a symlink", path);
      return sys_error("open '{}'", path);
    }
    if (errno != ENOSYS) return sys_error("open '{}'", path);
  }
  return walk(root, path, flags, how, mode);
}

}  // namespace pod::sys
