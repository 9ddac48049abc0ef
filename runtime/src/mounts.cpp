// The in-pod mounts, made with the new mount API and attached through fds resolved
// inside the root: a symlink in the image (/proc -> /host) cannot send a mount outside.
#include "mounts.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "spawn_proto.hpp"

namespace pod::runtime::detail {

namespace {

// Closes on scope exit; errno survives the close.
struct RawFd {
  int fd = -1;
  explicit RawFd(int f) noexcept : fd(f) {}
  RawFd(const RawFd&) = delete;
  RawFd& operator=(const RawFd&) = delete;
  ~RawFd() {
    if (fd >= 0) {
      int e = errno;
      ::close(fd);
      errno = e;
    }
  }
};

int resolve(int root, const char* path, int flags, mode_t mode = 0) noexcept {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, path, &how, sizeof how));
}

// A detached mount of a new `type` filesystem. opts: key, value pairs (value nullptr
// for a flag), ended by a nullptr key.
int fs_mount(const char* type, const char* const* opts, unsigned attrs) noexcept {
  RawFd fs(::fsopen(type, FSOPEN_CLOEXEC));
  if (fs.fd < 0) return -1;
  for (; opts && *opts; opts += 2) {
    int rc = opts[1] ? ::fsconfig(fs.fd, FSCONFIG_SET_STRING, opts[0], opts[1], 0)
                     : ::fsconfig(fs.fd, FSCONFIG_SET_FLAG, opts[0], nullptr, 0);
    if (rc != 0) return -1;
  }
  if (::fsconfig(fs.fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return -1;
  return ::fsmount(fs.fd, FSMOUNT_CLOEXEC, attrs);
}

int attach(int mnt, int target) noexcept {
  return ::move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

// Mounts a new filesystem on `target`; consumes nothing, closes its own fds.
int mount_on(int target, const char* type, const char* const* opts, unsigned attrs) noexcept {
  RawFd m(fs_mount(type, opts, attrs));
  if (m.fd < 0) return -1;
  return attach(m.fd, target);
}

int set_attrs(int mnt, unsigned attrs, bool recursive) noexcept {
  mount_attr a{};
  a.attr_set = attrs;
  return ::mount_setattr(mnt, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a);
}

// A clone of the host's file or tree at `path`, with `attrs`, attached on `target`.
int bind_host(const char* path, int target, unsigned attrs, bool recursive) noexcept {
  RawFd m(::open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0)));
  if (m.fd < 0) return -1;
  if (attrs && set_attrs(m.fd, attrs, recursive) != 0) return -1;
  return attach(m.fd, target);
}

constexpr unsigned kNoSuidDevExec = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

// Files and directories of /proc that reveal or change the host.
constexpr const char* kProcMasked[] = {"proc/kcore", "proc/keys", "proc/timer_list", "proc/sysrq-trigger",
                                       "proc/latency_stats", "proc/sched_debug", "proc/acpi", "proc/scsi"};
constexpr const char* kProcReadOnly[] = {"proc/sys", "proc/bus", "proc/fs", "proc/irq"};

int setup_proc(int root) noexcept {
  RawFd proc(make_path_in_root(root, "proc", true));
  if (proc.fd < 0 || mount_on(proc.fd, "proc", nullptr, kNoSuidDevExec) != 0) return kStepProc;
  for (const char* p : kProcMasked) {
    RawFd t(resolve(root, p, O_PATH | O_NOFOLLOW));
    if (t.fd < 0) {
      if (errno == ENOENT) continue;
      return kStepProcMask;
    }
    struct stat st {};
    if (::fstat(t.fd, &st) != 0) return kStepProcMask;
    int rc = S_ISDIR(st.st_mode) ? mount_on(t.fd, "tmpfs", nullptr, MOUNT_ATTR_RDONLY | kNoSuidDevExec)
                                 : bind_host("/dev/null", t.fd, 0, false);
    if (rc != 0) return kStepProcMask;
  }
  for (const char* p : kProcReadOnly) {
    RawFd t(resolve(root, p, O_PATH | O_NOFOLLOW | O_DIRECTORY));
    if (t.fd < 0) {
      if (errno == ENOENT) continue;
      return kStepProcMask;
    }
    RawFd m(::open_tree(t.fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
    if (m.fd < 0 || set_attrs(m.fd, MOUNT_ATTR_RDONLY | kNoSuidDevExec, true) != 0 || attach(m.fd, t.fd) != 0)
      return kStepProcMask;
  }
  return 0;
}

// The pod's cgroups as its cgroup namespace shows them, read-only: cgroup2, or on a
// cgroup v1 host a tmpfs holding each hierarchy the pod is placed in.
int setup_cgroup(int root, const RootSetup& setup) noexcept {
  RawFd cg(resolve(root, "sys/fs/cgroup", O_PATH | O_DIRECTORY));
  if (cg.fd < 0) return kStepCgroupMount;
  if (setup.ncgroup_v1 == 0)
    return mount_on(cg.fd, "cgroup2", nullptr, MOUNT_ATTR_RDONLY | kNoSuidDevExec) == 0 ? 0 : kStepCgroupMount;
  const char* const opts[] = {"mode", "755", "size", "4096", nullptr};
  RawFd t(fs_mount("tmpfs", opts, kNoSuidDevExec));
  if (t.fd < 0 || attach(t.fd, cg.fd) != 0) return kStepCgroupMount;
  for (std::size_t i = 0; i < setup.ncgroup_v1; ++i) {
    const CgroupMount& m = setup.cgroup_v1[i];
    if (::mkdirat(t.fd, m.dir, 0755) != 0) return kStepCgroupMount;
    RawFd d(::openat(t.fd, m.dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.fd < 0 || mount_on(d.fd, "cgroup", m.opts, MOUNT_ATTR_RDONLY | kNoSuidDevExec) != 0) return kStepCgroupMount;
  }
  return set_attrs(t.fd, MOUNT_ATTR_RDONLY, false) == 0 ? 0 : kStepCgroupMount;
}

int setup_sys(int root, const RootSetup& setup) noexcept {
  const bool own_net = setup.own_net;
  RawFd sys(make_path_in_root(root, "sys", true));
  if (sys.fd < 0) return kStepSys;
  // A new sysfs shows the net namespace of its mounter, which must be ours to mount.
  int rc = own_net ? mount_on(sys.fd, "sysfs", nullptr, MOUNT_ATTR_RDONLY | kNoSuidDevExec)
                   : bind_host("/sys", sys.fd, MOUNT_ATTR_RDONLY | kNoSuidDevExec, true);
  if (rc != 0) return kStepSys;
  return setup_cgroup(root, setup);
}

int setup_dev(int root, bool devpts_gid) noexcept {
  RawFd target(make_path_in_root(root, "dev", true));
  if (target.fd < 0) return kStepDev;
  const char* const dev_opts[] = {"mode", "755", "size", "65536", nullptr};
  RawFd dev(fs_mount("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC));
  if (dev.fd < 0 || attach(dev.fd, target.fd) != 0) return kStepDev;
  // mknod is refused in a user namespace: the host's nodes are bound over empty files.
  static constexpr const char* kNodes[][2] = {{"null", "/dev/null"},     {"zero", "/dev/zero"},
                                              {"full", "/dev/full"},     {"random", "/dev/random"},
                                              {"urandom", "/dev/urandom"}, {"tty", "/dev/tty"}};
  for (const auto& n : kNodes) {
    RawFd f(::openat(dev.fd, n[0], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666));
    if (f.fd < 0 || bind_host(n[1], f.fd, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false) != 0) return kStepDevNodes;
  }
  static constexpr const char* kLinks[][2] = {{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
                                              {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                                              {"pts/ptmx", "ptmx"}};
  for (const auto& l : kLinks)
    if (::symlinkat(l[0], dev.fd, l[1]) != 0) return kStepDevNodes;
  for (const char* d : {"pts", "shm", "mqueue"})
    if (::mkdirat(dev.fd, d, 0755) != 0) return kStepDevNodes;

  RawFd pts(::openat(dev.fd, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  const char* const pts_opts[] = {"newinstance", nullptr, "ptmxmode", "0666", "mode", "0620", "gid", "5", nullptr};
  const char* const pts_opts_nogid[] = {"newinstance", nullptr, "ptmxmode", "0666", "mode", "0620", nullptr};
  if (pts.fd < 0 || mount_on(pts.fd, "devpts", devpts_gid ? pts_opts : pts_opts_nogid,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) != 0)
    return kStepDevPts;
  RawFd shm(::openat(dev.fd, "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  const char* const shm_opts[] = {"mode", "1777", nullptr};
  if (shm.fd < 0 || mount_on(shm.fd, "tmpfs", shm_opts, kNoSuidDevExec) != 0) return kStepDevShm;
  RawFd mq(::openat(dev.fd, "mqueue", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (mq.fd < 0 || mount_on(mq.fd, "mqueue", nullptr, kNoSuidDevExec) != 0) return kStepMqueue;
  return 0;
}

}  // namespace

int make_path_in_root(int root, const char* path, bool dir) noexcept {
  int fd = resolve(root, path, O_PATH | (dir ? O_DIRECTORY : 0));
  if (fd >= 0 || errno != ENOENT) return fd;
  char buf[PATH_MAX];
  std::size_t len = std::strlen(path);
  while (len > 1 && path[len - 1] == '/') --len;
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(buf, path, len);
  buf[len] = 0;
  // Each prefix is resolved from the root again, so ".." and symlinks stay inside it.
  std::size_t i = 0;
  for (;;) {
    while (buf[i] == '/') ++i;
    if (!buf[i]) break;
    std::size_t j = i;
    while (buf[j] && buf[j] != '/') ++j;
    const bool last = buf[j] == 0;
    char saved = buf[j];
    buf[j] = 0;
    if (last && !dir) {
      int f = resolve(root, buf, O_PATH);
      if (f < 0 && errno == ENOENT) f = resolve(root, buf, O_WRONLY | O_CREAT | O_NOCTTY, 0644);
      return f;
    }
    int d = resolve(root, buf, O_PATH | O_DIRECTORY);
    if (d < 0 && errno == ENOENT) {
      char keep = buf[i];
      buf[i] = 0;
      RawFd parent(i == 0 ? ::fcntl(root, F_DUPFD_CLOEXEC, 0) : resolve(root, buf, O_PATH | O_DIRECTORY));
      buf[i] = keep;
      if (parent.fd < 0) return -1;
      if (::mkdirat(parent.fd, buf + i, 0755) != 0 && errno != EEXIST) return -1;
      d = resolve(root, buf, O_PATH | O_DIRECTORY);
    }
    if (d < 0 || last) return d;
    ::close(d);
    buf[j] = saved;
    i = j;
  }
  return resolve(root, path, O_PATH | O_DIRECTORY);  // only slashes: the root itself
}

int open_root_point(const RootSetup& setup, int* err) noexcept {
  int point = ::open(setup.rootfs_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (point < 0) {
    *err = errno;
    return -1;
  }
  struct stat st {};
  if (::fstat(point, &st) != 0) *err = errno;
  else if (st.st_dev != setup.rootfs_dev || st.st_ino != setup.rootfs_ino) *err = ESTALE;
  else return point;
  ::close(point);
  return -1;
}

int setup_root(const RootSetup& setup, const AppRoot& app, int point, int* err) noexcept {
  auto fail = [&](int step) {
    *err = errno ? errno : EIO;
    return step;
  };
  if (attach(app.rootfs, point) != 0) return fail(kStepRootfs);
  // The rootfs fd now names the attached root.
  const int root = app.rootfs;
  if (int s = setup_proc(root)) return fail(s);
  if (int s = setup_sys(root, setup)) return fail(s);
  if (int s = setup_dev(root, setup.devpts_gid)) return fail(s);
  for (int k = 0; k < kEtcCount; ++k) {
    if (app.etc[k] < 0) continue;
    RawFd t(make_path_in_root(root, kEtcTargets[k], false));
    if (t.fd < 0 || attach(app.etc[k], t.fd) != 0) return fail(kStepEtcFiles);
  }
  for (std::size_t v = 0; v < app.nvolumes; ++v) {
    const AppVolume& vol = app.volumes[v];
    RawFd t(make_path_in_root(root, vol.target, vol.directory));
    if (t.fd < 0 || attach(vol.fd, t.fd) != 0) return fail(kStepVolume);
  }
  if (::fchdir(root) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 || ::umount2(".", MNT_DETACH) != 0 ||
      ::chdir("/") != 0)
    return fail(kStepPivot);
  return 0;
}

int seal_init_root(const RootSetup& setup, int* err) noexcept {
  const char* const opts[] = {"mode", "0555", "size", "4096", nullptr};
  RawFd m(fs_mount("tmpfs", opts, MOUNT_ATTR_RDONLY | kNoSuidDevExec));
  RawFd point(::open(setup.rootfs_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (m.fd < 0 || point.fd < 0 || attach(m.fd, point.fd) != 0 || ::fchdir(m.fd) != 0 ||
      ::syscall(SYS_pivot_root, ".", ".") != 0 || ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    *err = errno;
    return kStepPivot;
  }
  return 0;
}

}  // namespace pod::runtime::detail
