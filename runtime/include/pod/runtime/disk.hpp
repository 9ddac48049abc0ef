// --disk-space: a limit on the bytes a pod's writable layer (its upper, work and copy
// directories) may hold. Three ways, in the order they are chosen:
//   project  a project quota on the store's own filesystem (ext4 with the project
//            feature, xfs with prjquota): root only, the layer stays where it is;
//   loop     (root) an ext4 image of that size in the pod's directory, loop-mounted;
//   tmpfs    (ordinary users) a size-limited tmpfs in `pod run`'s mount namespace: in
//            memory, and gone when the pod ends.
// Past the limit writes fail with ENOSPC (loop, tmpfs) or EDQUOT (an ext4 project quota).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

enum class DiskKind { project, loop, tmpfs };
[[nodiscard]] const char* disk_kind_name(DiskKind k);

struct DiskChoice {
  DiskKind kind = DiskKind::tmpfs;
  std::string reason;
};

// How a limit can be had for pods in `pods_dir` (STORE/pods); `root`: host root calls.
[[nodiscard]] sys::Result<DiskChoice> choose_disk(sys::FdRef pods_dir, bool root);

// Project quota: a project id no file on the filesystem uses yet, `bytes` as its hard
// block limit, and the id (inherited by new files) on each directory of `dirs`.
// Returns the id.
[[nodiscard]] sys::Result<std::uint32_t> limit_by_project(const std::vector<sys::FdRef>& dirs, std::uint64_t bytes,
                                                         std::string_view seed);

// A filesystem of `bytes` of the pod's own (loop or tmpfs), attached on pod_dir/disk,
// its root owned by uid:gid (the pod's root as `pod` sees it). Returns the directory.
// loop: the image is pod_dir/disk.img; the loop device goes with the last unmount.
[[nodiscard]] sys::Result<sys::Fd> mount_pod_disk(sys::FdRef pod_dir, DiskKind kind, std::uint64_t bytes, uid_t uid,
                                                  gid_t gid);

}  // namespace pod::runtime
