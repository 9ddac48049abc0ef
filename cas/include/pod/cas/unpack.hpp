// Unpacking one layer (a tar stream, compressed or not) into a directory, safely.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pod/cas/digest.hpp"
#include "pod/cas/limits.hpp"
#include "pod/sys/fd.hpp"

namespace pod::cas {

using sys::FdRef;

enum class Ownership {
  exact,           // chown every entry to the owner the archive says
  rootless_xattr,  // keep our own id; record uid/gid in user.rootlesscontainers (umoci's way)
};

enum class OverlayXattrs {
  trusted,  // trusted.overlay.opaque (real root)
  user,     // user.overlay.opaque (overlayfs "userxattr", inside a user namespace)
};

struct UnpackOptions {
  Ownership ownership = Ownership::exact;
  OverlayXattrs overlay_xattrs = OverlayXattrs::trusted;
  Limits limits;
  std::optional<Digest> expected_diff_id;  // checked against the decompressed stream
  Warn warn;                               // may be empty
  std::uint64_t progress_total = 0;        // compressed size, for the progress bar
  std::string progress_label;
};

struct TreeSummary {
  Digest diff_id;                   // SHA-256 of the decompressed tar stream
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;          // regular file content written
  std::set<std::uint32_t> uids;     // the owners the archive names (census)
  std::set<std::uint32_t> gids;
  std::uint64_t skipped_devices = 0;
};

// Reads the layer from `blob` (gzip, zstd, bzip2, xz or none, detected) and creates its
// entries below the empty directory `root`, entry by entry through descriptors:
// no entry leaves root, no symlink is followed, hard links only reach regular files
// of this layer, whiteouts become overlayfs whiteouts. Writes one JSON line per entry to
// `file_list` (the record that verify_tree checks). On error `root` holds a partial tree
// that the caller removes.
[[nodiscard]] Result<TreeSummary> unpack_layer(FdRef blob, FdRef root, FdRef file_list,
                                               const UnpackOptions& opts);

// Compares the tree below `root` with the record `file_list` written by unpack_layer;
// returns one line per difference ("etc/passwd: content changed"), empty when equal.
[[nodiscard]] Result<std::vector<std::string>> verify_tree(FdRef root, FdRef file_list);

}  // namespace pod::cas
