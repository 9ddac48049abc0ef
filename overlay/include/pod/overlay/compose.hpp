// A pod's root filesystem from layer trees: an overlay mount made with the new mount
// API, detached, for the runtime to attach inside the pod's mount namespace; or, where
// overlayfs is refused, a flattened copy. Takes directory fds, never store types.
#pragma once

#include <span>
#include <string>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::overlay {

struct ComposeOptions {
  // user.overlay.* xattrs instead of trusted.overlay.* (the "userxattr" option): for
  // layers unpacked in a user namespace, and required when mounting inside one.
  bool userxattr = false;
  bool read_only = false;  // no upper layer: upper and work are ignored
  // "metacopy=on": lower layers may hold metadata-only files (trusted.overlay.metacopy)
  // whose data is the same path in the next layer down. Root only.
  bool metacopy = false;
  // "volatile" (Linux 5.10+): sync, syncfs and fsync skip the upper layer's disk, and
  // the last unmount does not sync the upper filesystem (without it, a pod's exit waits
  // for a journal commit of the whole filesystem). Left out where the kernel lacks it.
  bool volatile_upper = false;
};

// A detached overlay mount (an fsmount fd): `lowers` in image order (bottom layer
// first), `upper` and `work` (empty directories on one filesystem) above. The caller
// attaches it with move_mount. Each lower may itself be a detached (e.g. idmapped)
// mount. Uses "lowerdir+" (Linux 6.8+) and falls back to the legacy "lowerdir=" string;
// too many layers for the kernel is an error that says so and names the limit.
// overlayfs clones each layer's mount and refuses mounts of another mount namespace
// (EINVAL, "failed to clone upperpath" in the kernel log only): a directory opened
// before unshare(CLONE_NEWNS) is reopened here by its path, if that leads to it.
[[nodiscard]] sys::Result<sys::Fd> compose(std::span<const sys::FdRef> lowers, sys::FdRef upper, sys::FdRef work,
                                           const ComposeOptions& options);

// Where overlayfs is refused: copies the layers, bottom first, into the empty directory
// `dest`, applying whiteouts and opaque directories (both xattr spellings), keeping
// owners, modes, xattrs, hard links and holes; reflinks files where the filesystem can.
[[nodiscard]] sys::Result<void> flatten(std::span<const sys::FdRef> lowers, sys::FdRef dest,
                                        const ComposeOptions& options);

// How layers are handed to overlayfs; compose() picks the first the kernel takes.
enum class LayerSpec {
  automatic,
  fd,         // FSCONFIG_SET_FD "lowerdir+" (Linux 6.13+)
  proc_path,  // FSCONFIG_SET_STRING "lowerdir+" "/proc/self/fd/N" (Linux 6.8+)
  legacy,     // one "lowerdir=A:B:C" string, at most 255 bytes through fsconfig
};
// Test hook: use only `spec` (automatic: the normal fallback order).
void force_layer_spec(LayerSpec spec);

}  // namespace pod::overlay
