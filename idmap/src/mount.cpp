#include "pod/idmap/mount.hpp"

#include <sys/mount.h>

namespace pod::idmap {

using sys::Fd;
using sys::make_error;

sys::Result<Fd> idmapped_mount(sys::FdRef dir, sys::FdRef userns) {
  // Not AT_RECURSIVE: mounts below `dir` are not ours to remap; callers idmap each.
  int fd = ::open_tree(dir.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (fd < 0) {
    int err = errno;
    if (err == EPERM)
      return make_error(err, "open_tree: cloning a mount needs CAP_SYS_ADMIN over the mount namespace");
    if (err == EINVAL)
      return make_error(err, "open_tree: this directory's mount cannot be cloned (unbindable or not a directory)");
    return make_error(err, "open_tree");
  }
  Fd mnt(fd);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<std::uint64_t>(userns.get());
  if (::mount_setattr(mnt.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    int err = errno;
    switch (err) {
      case EPERM:
        return make_error(err, "idmapping a mount: not privileged over this filesystem (it belongs to another "
                               "user namespace, as the host's disks do for ordinary users) or over the given "
                               "user namespace; or that namespace is the initial one, or the mount is idmapped "
                               "already");
      case EINVAL:
        return make_error(err, "idmapping a mount: this filesystem cannot be idmapped (an overlay, or a "
                               "filesystem without idmapped-mount support), or the mount is not a detached "
                               "clone");
      case ENOSYS:
        return make_error(err, "idmapping a mount: this kernel has no mount_setattr (Linux 5.12 or later)");
      default:
        return make_error(err, "mount_setattr(MOUNT_ATTR_IDMAP)");
    }
  }
  return mnt;
}

}  // namespace pod::idmap
