#include "pod/runtime/disk.hpp"

#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <linux/quota.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "pod/overlay/fs_context.hpp"
#include "pod/runtime/net.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

namespace {

int quotactl_fd(sys::FdRef fd, unsigned cmd, int id, void* addr) {
  return static_cast<int>(::syscall(SYS_quotactl_fd, fd.get(), cmd, id, addr));
}

std::string fs_name(sys::FdRef fd) {
  struct statfs s {};
  if (::fstatfs(fd.get(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    default: return fmt::format("type {:#x}", static_cast<unsigned long>(s.f_type));
  }
}

// Whether the filesystem of `fd` enforces project quotas (accounting alone, as ext4
// does without the prjquota mount option, limits nothing); else why not.
std::optional<std::string> no_project_quota(sys::FdRef fd) {
  fs_quota_statv st{};
  st.qs_version = FS_QSTATV_VERSION1;
  if (quotactl_fd(fd, QCMD(Q_XGETQSTATV, PRJQUOTA), 0, &st) != 0) {
    int e = errno;
    if (e == ESRCH || e == ENOSYS || e == EOPNOTSUPP)
      return fmt::format("the store's filesystem ({}) has no project quotas", fs_name(fd));
    return fmt::format("the store's filesystem ({}) gives no project quota: {}", fs_name(fd), std::strerror(e));
  }
  if (!(st.qs_flags & FS_QUOTA_PDQ_ENFD))
    return fmt::format("project quotas are counted but not enforced on the store's filesystem ({}; ext4 needs the "
                       "prjquota mount option)", fs_name(fd));
  return std::nullopt;
}

// A free loop device backed by `image`, freed again by the kernel after the last unmount.
sys::Result<std::pair<sys::Fd, std::string>> attach_loop(sys::FdRef image) {
  sys::Fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl) return sys::sys_error("opening /dev/loop-control (a loop device for the pod's disk image)");
  for (int attempt = 0; attempt < 8; ++attempt) {
    int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return sys::sys_error("no free loop device for the pod's disk image");
    std::string dev = fmt::format("/dev/loop{}", n);
    sys::Fd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) return sys::sys_error("opening {}", dev);
    loop_config cfg{};
    cfg.fd = static_cast<__u32>(image.get());
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) return std::pair{std::move(loop), dev};
    if (errno != EBUSY) return sys::sys_error("attaching the pod's disk image to {}", dev);
    // Taken by someone else between GET_FREE and CONFIGURE: ask again.
  }
  return sys::make_error(EBUSY, "every free loop device was taken by others while attaching the pod's disk image");
}

sys::Result<sys::Fd> make_loop_disk(sys::FdRef pod_dir, std::uint64_t bytes, uid_t uid, gid_t gid) {
  sys::Fd image(::openat(pod_dir.get(), "disk.img", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!image) return sys::sys_error("creating the pod's disk image");
  if (::ftruncate(image.get(), static_cast<off_t>(bytes)) != 0) return sys::sys_error("sizing the pod's disk image");
  // No journal and no reserved blocks: the layer does not outlive a crash (gc removes
  // it) and every block is the pod's.
  std::string path = POD_TRY(sys::fd_path(pod_dir)) + "/disk.img";
  std::vector<std::string> argv = {"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
                                   "-E", fmt::format("root_owner={}:{},nodiscard", uid, gid), path};
  auto out = detail::run_with_input(argv, "", {});
  if (!out) return std::unexpected(std::move(out.error()).context("making the pod's disk image"));
  if (out->code != 0) return sys::make_error(EIO, "mkfs.ext4 of the pod's disk image failed: {}", out->err + out->out);
  auto [loop, dev] = POD_TRY(attach_loop(image));
  auto mount_dev = [&]() -> sys::Result<sys::Fd> {
    overlay::FsContext fs = POD_TRY(overlay::FsContext::open("ext4"));
    POD_TRY(fs.set_string("source", dev));
    POD_TRY(fs.create());
    return fs.mount(MOUNT_ATTR_NODEV);
  };
  auto mnt = mount_dev();
  if (!mnt) {
    (void)::ioctl(loop.get(), LOOP_CLR_FD);
    return std::unexpected(std::move(mnt.error()).context("mounting the pod's disk image ({})", dev));
  }
  return std::move(*mnt);
}

sys::Result<sys::Fd> make_tmpfs_disk(std::uint64_t bytes, uid_t uid, gid_t gid) {
  overlay::FsContext fs = POD_TRY(overlay::FsContext::open("tmpfs"));
  POD_TRY(fs.set_string("size", std::to_string(bytes)));
  POD_TRY(fs.set_string("mode", "0755"));
  POD_TRY(fs.set_string("uid", std::to_string(uid)));
  POD_TRY(fs.set_string("gid", std::to_string(gid)));
  POD_TRY(fs.create());
  return fs.mount(MOUNT_ATTR_NODEV);
}

}  // namespace

const char* disk_kind_name(DiskKind k) {
  switch (k) {
    case DiskKind::project: return "project quota";
    case DiskKind::loop: return "loop-mounted ext4 image";
    case DiskKind::tmpfs: return "tmpfs";
  }
  return "?";
}

sys::Result<DiskChoice> choose_disk(sys::FdRef pods_dir, bool root) {
  if (!root)
    return DiskChoice{DiskKind::tmpfs, "an ordinary user can set no quota and mount no disk image: a tmpfs of that "
                                       "size (in memory; the writable layer is gone when the pod ends)"};
  auto why_not = no_project_quota(pods_dir);
  if (!why_not) return DiskChoice{DiskKind::project, fmt::format("the store's filesystem ({}) has project quotas on", fs_name(pods_dir))};
  if (!sys::in_path("mkfs.ext4"))
    return sys::make_error(ENOENT, "--disk-space: {}, and mkfs.ext4 for a disk image of the pod's own is not installed "
                                   "(Debian package e2fsprogs)", *why_not);
  return DiskChoice{DiskKind::loop, *why_not + ": an ext4 image of that size in the pod's directory"};
}

sys::Result<std::uint32_t> limit_by_project(const std::vector<sys::FdRef>& dirs, std::uint64_t bytes,
                                            std::string_view seed) {
  if (dirs.empty()) return sys::make_error(EINVAL, "no directory to limit");
  // Ids from 2^30 up, where hand-made projects (small numbers) are unlikely; the first
  // one that owns nothing is free (a removed pod's stale limit is simply replaced).
  constexpr std::uint32_t kBase = 1u << 30, kSpan = (1u << 30) - 1;
  std::uint32_t start = static_cast<std::uint32_t>(std::hash<std::string_view>{}(seed) % kSpan);
  for (std::uint32_t i = 0; i < 256; ++i) {
    int id = static_cast<int>(kBase + (start + i) % kSpan);
    if_dqblk q{};
    if (quotactl_fd(dirs[0], QCMD(Q_GETQUOTA, PRJQUOTA), id, &q) != 0)
      return sys::sys_error("reading project quota {}", id);
    if ((q.dqb_valid & QIF_USAGE) && (q.dqb_curspace != 0 || q.dqb_curinodes != 0)) continue;
    if_dqblk set{};
    set.dqb_bhardlimit = set.dqb_bsoftlimit = (bytes + QIF_DQBLKSIZE - 1) / QIF_DQBLKSIZE;
    set.dqb_valid = QIF_BLIMITS;
    if (quotactl_fd(dirs[0], QCMD(Q_SETQUOTA, PRJQUOTA), id, &set) != 0)
      return sys::sys_error("setting the limit of project quota {}", id);
    for (sys::FdRef d : dirs) {
      fsxattr x{};
      if (::ioctl(d.get(), FS_IOC_FSGETXATTR, &x) != 0) return sys::sys_error("reading the project of a pod directory");
      x.fsx_projid = static_cast<__u32>(id);
      x.fsx_xflags |= FS_XFLAG_PROJINHERIT;
      if (::ioctl(d.get(), FS_IOC_FSSETXATTR, &x) != 0)
        return sys::sys_error("giving a pod directory the project {}", id);
    }
    return static_cast<std::uint32_t>(id);
  }
  return sys::make_error(EBUSY, "no unused project id among 256 tried");
}

sys::Result<sys::Fd> mount_pod_disk(sys::FdRef pod_dir, DiskKind kind, std::uint64_t bytes, uid_t uid, gid_t gid) {
  if (kind == DiskKind::project) return sys::make_error(EINVAL, "a project quota needs no filesystem of its own");
  sys::Fd mnt = kind == DiskKind::loop ? POD_TRY(make_loop_disk(pod_dir, bytes, uid, gid))
                                       : POD_TRY_CTX(make_tmpfs_disk(bytes, uid, gid), "the pod's tmpfs disk");
  if (::mkdirat(pod_dir.get(), "disk", 0700) != 0) return sys::sys_error("making the pod's disk mount point");
  if (::move_mount(mnt.get(), "", pod_dir.get(), "disk", MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return sys::sys_error("attaching the pod's disk");
  return sys::open_at(pod_dir, "disk", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

}  // namespace pod::runtime
