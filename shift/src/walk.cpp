#include "walk.hpp"

#include "dir_pool.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <cstdio>
#include <memory>

namespace pod::shift::detail {

namespace {

constexpr int kMaxDepth = 4096;           // as the census walk: deeper is ELOOP

struct Item {
  sys::Fd fd;
  std::string path;
  int depth = 0;
};

class Walk {
 public:
  Walk(dev_t dev, const Visit& visit, WalkCounts& counts) : dev_(dev), visit_(visit), counts_(counts) {}

  DirPool<Item> pool{[this](Item it) { return dir(std::move(it)); }};

 private:
  sys::Result<void> dir(Item it) {
    if (it.depth > kMaxDepth) return sys::make_error(ELOOP, "'{}' is deeper than {} directories", it.path, kMaxDepth);
    DIR* d = ::fdopendir(::openat(it.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));  // own offset
    if (!d) return sys::sys_error("reading directory '{}'", it.path.empty() ? "." : it.path);
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    int dfd = it.fd.get();
    for (;;) {
      if (pool.stopped()) return {};
      errno = 0;
      dirent* e = ::readdir(d);
      if (!e) {
        if (errno) return sys::sys_error("reading directory '{}'", it.path.empty() ? "." : it.path);
        return {};
      }
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      POD_TRY(entry(dfd, it, name, e->d_type));
    }
  }

  sys::Result<void> entry(int dfd, const Item& parent, std::string_view name, unsigned char type) {
    std::string cname(name);
    sys::Fd fd;
    bool opened_dir = false;
    if (type == DT_DIR || type == DT_UNKNOWN) {
      // O_DIRECTORY fails before any open of a non-directory; O_NOFOLLOW refuses a
      // symlink swapped in since readdir.
      fd.reset(::openat(dfd, cname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd && errno != ENOTDIR && errno != ELOOP && errno != ENOENT)
        return sys::sys_error("opening directory '{}'", join(parent.path, name));
      opened_dir = fd.valid();
    }
    if (!fd) {
      fd.reset(::openat(dfd, cname.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) {
        if (errno == ENOENT) return {};  // removed while we walked
        return sys::sys_error("opening '{}'", join(parent.path, name));
      }
    }
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) return sys::sys_error("stat '{}'", join(parent.path, name));
    if (st.st_dev != dev_) {
      counts_.other_fs.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    if (S_ISDIR(st.st_mode)) {
      if (!opened_dir) {
        // An O_PATH fd: a directory swapped in after readdir. Reopen that very inode.
        sys::Fd d(::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!d) return sys::sys_error("opening directory '{}'", join(parent.path, name));
        fd = std::move(d);
      }
      counts_.inodes.fetch_add(1, std::memory_order_relaxed);
      POD_TRY(visit_(Node{fd.get(), st, parent.path, name}));
      Item child{std::move(fd), join(parent.path, name), parent.depth + 1};
      if (pool.offer(child)) return {};
      return dir(std::move(child));
    }
    counts_.inodes.fetch_add(1, std::memory_order_relaxed);
    return visit_(Node{fd.get(), st, parent.path, name});
  }

  static std::string join(const std::string& dir, std::string_view name) {
    return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
  }

  dev_t dev_;
  const Visit& visit_;
  WalkCounts& counts_;
};

// Deep trees hold a directory fd per level on each thread: lift the soft limit to the
// hard one, as the walk's fds are the process's only large use of them.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

std::string Node::path() const {
  if (dir.empty()) return std::string(name);
  return dir + "/" + std::string(name);
}

ProcPath::ProcPath(int fd) { std::snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd); }

sys::Result<void> walk(sys::FdRef top, unsigned threads, const Visit& visit, WalkCounts& counts,
                       const std::function<void()>& tick) {
  raise_fd_limit();
  sys::Fd root(::openat(top.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys::sys_error("opening the top of the tree");
  struct stat st;
  if (::fstat(root.get(), &st) < 0) return sys::sys_error("stat of the top of the tree");
  Walk w(st.st_dev, visit, counts);
  counts.inodes.fetch_add(1);
  std::string empty;
  POD_TRY(visit(Node{root.get(), st, empty, "."}));
  return w.pool.run(Item{std::move(root), "", 0}, threads, tick);
}

}  // namespace pod::shift::detail
