// A copy of a tree that keeps what a layer is made of: owners, modes, times, hard
// links, holes of sparse files and every xattr. Data is shared with a reflink
// (FICLONE) where the filesystem can, so a shifted copy of a layer costs metadata only.
#pragma once

#include <cstdint>
#include <string_view>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift {

struct CopyStats {
  std::uint64_t inodes = 0, reflinked = 0, copied = 0, links = 0;
};

// Copies the directory `src` (an fd) to the new directory dst_dir/name (which must not
// exist). Walks by fds, never follows a symlink, opens only regular files and
// directories, stays on src's filesystem.
[[nodiscard]] sys::Result<CopyStats> copy_tree(sys::FdRef src, sys::FdRef dst_dir, std::string_view name);

}  // namespace pod::shift
