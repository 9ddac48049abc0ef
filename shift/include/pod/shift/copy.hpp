// A copy of a tree that keeps what a layer is made of: owners, modes, times, hard
// links, holes of sparse files and every xattr. Data is shared with a reflink
// (FICLONE) where the filesystem can, so a shifted copy of a layer costs metadata only.
#pragma once

#include <cstdint>
#include <string_view>

#include "pod/shift/idshift.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift {

// full: the data is copied (or reflinked). metacopy: regular files get their size and
// metadata but no data, marked with overlayfs's trusted.overlay.metacopy xattr, and
// directories lose their opaque marks: such a copy is stacked right above its source in
// an overlay mounted with metacopy=on, which reads each file's data from the source
// (root only: trusted.* xattrs).
enum class CopyData { full, metacopy };

struct CopyStats {
  std::uint64_t inodes = 0, reflinked = 0, copied = 0, links = 0;
};

struct CopyOptions {
  CopyData data = CopyData::full;
  // When set, the copy is shifted as it is made: owners, the root id of file capabilities
  // and the ids of ACL entries go through it (an id outside its source map is an error
  // naming the path, or kOverflowId with Unmapped::overflow). One pass, no journal: a
  // copy is made under a temporary name and is only worth keeping once whole.
  const Shift* shift = nullptr;
  Unmapped unmapped = Unmapped::error;
  unsigned threads = 0;  // 0: one per core
};

// Copies the directory `src` (an fd) to the new directory dst_dir/name (which must not
// exist). Walks by fds, never follows a symlink, opens only regular files and
// directories, stays on src's filesystem. Directories are shared among threads; each
// directory's own metadata and times are set once its entries are made.
[[nodiscard]] sys::Result<CopyStats> copy_tree(sys::FdRef src, sys::FdRef dst_dir, std::string_view name,
                                               const CopyOptions& options = {});

}  // namespace pod::shift
