// A parallel walk of a tree by descriptors, shared by shift, dry run and verify.
// Never follows a symlink, never opens anything but directories (other inodes are
// pinned with O_PATH, which opens no fifo and no device), never leaves the filesystem
// of the top directory.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift::detail {

// One inode met by the walk. `fd` is an O_RDONLY directory fd for directories, an
// O_PATH|O_NOFOLLOW fd otherwise; `st` is fstat of that fd, so every change made
// through `fd` reaches exactly the inode that was checked.
struct Node {
  int fd = -1;
  const struct stat& st;
  const std::string& dir;  // path of the parent relative to the top ("" for the top)
  std::string_view name;   // "." for the top
  [[nodiscard]] std::string path() const;
};

using Visit = std::function<sys::Result<void>(const Node&)>;

struct WalkCounts {
  std::atomic<std::uint64_t> inodes{0};
  std::atomic<std::uint64_t> other_fs{0};  // mount points met and not entered
};

// Calls visit for every inode of the tree, `threads` at a time; `tick` runs on the
// calling thread about every 100 ms while the walk goes on. The first error a visit
// returns stops the walk and is returned.
[[nodiscard]] sys::Result<void> walk(sys::FdRef top, unsigned threads, const Visit& visit, WalkCounts& counts,
                                     const std::function<void()>& tick);

// "/proc/self/fd/N": reaches the inode of an O_PATH fd for the calls that take a path
// (xattrs, chmod), without a lookup by name that could be raced.
struct ProcPath {
  explicit ProcPath(int fd);
  char buf[32];
  [[nodiscard]] const char* c_str() const { return buf; }
};

}  // namespace pod::shift::detail
