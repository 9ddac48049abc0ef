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
// Owners are compared as stored, so run it as the user (or in the namespace) that
// unpacked. It never follows a symlink nor leaves root's filesystem.
//
// The file list: one JSON object a line, in archive order, the last line of a path
// winning. "p": path ("." the root; "px": hex when not UTF-8), "t": f file, d directory,
// l symlink, h hard link, c/b device, p fifo, w whiteout, o opaque marker of directory p;
// "m" mode bits, "u"/"g" owner as stored, "s" size and "h" XXH3-64 (hex) of a file's
// content, "l" ("lx") symlink or hard link target, "r" device number, "x" opaque xattr.
[[nodiscard]] Result<std::vector<std::string>> verify_tree(FdRef root, FdRef file_list);

// The value of user.rootlesscontainers for an owner, as umoci writes it: the protobuf
// message `Resource { uint32 uid = 1; uint32 gid = 2; }`, where an id of 0 is written as
// 0xFFFFFFFF ("leave unchanged"); nullopt for 0:0, which needs no xattr.
[[nodiscard]] std::optional<std::string> rootless_xattr_value(std::uint32_t uid, std::uint32_t gid);

inline constexpr const char* kRootlessXattr = "user.rootlesscontainers";

}  // namespace pod::cas
