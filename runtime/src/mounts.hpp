// An app's root filesystem inside the pod, set up in the app process (its own mount
// namespace) before exec: the root attached, /proc (with masks), /sys, /dev, /dev/pts,
// /dev/shm, /dev/mqueue, /sys/fs/cgroup, /etc files, volumes, then pivot_root.
// Everything here runs in a forked child: raw system calls on prepared data, no
// allocation; a failure returns the Step with errno in *err.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace pod::runtime::detail {

enum EtcFile { kEtcHostname, kEtcHosts, kEtcResolvConf, kEtcCount };
inline constexpr const char* kEtcTargets[kEtcCount] = {"etc/hostname", "etc/hosts", "etc/resolv.conf"};

// A cgroup v1 hierarchy the pod mounts read-only at /sys/fs/cgroup/<dir>.
struct CgroupMount {
  const char* dir = nullptr;   // "memory", "cpu,cpuacct"
  const char* opts[9] = {};    // each controller as a flag option: name, nullptr; then nullptr
};
inline constexpr std::size_t kMaxCgroupMounts = 4;

struct RootSetup {
  const char* rootfs_path = nullptr;  // the mount point, re-resolved in the app's namespace
  dev_t rootfs_dev = 0;               // ... and checked against the caller's fd
  ino_t rootfs_ino = 0;
  bool own_net = true;     // a net namespace of its own: a new sysfs; else the host's /sys, read-only
  bool devpts_gid = true;  // gid 5 (tty) is mapped: devpts gets gid=5
  // cgroup v1: a read-only tmpfs at /sys/fs/cgroup with these hierarchies (read-only);
  // none: cgroup2 of the pod's cgroup namespace, read-only.
  const CgroupMount* cgroup_v1 = nullptr;
  std::size_t ncgroup_v1 = 0;
};

struct AppVolume {
  int fd = -1;  // a detached mount, read-only already if asked
  bool directory = true;
  const char* target = nullptr;  // inside the app's root
};

struct AppRoot {
  int rootfs = -1;             // a detached mount
  int etc[kEtcCount] = {-1, -1, -1};  // detached mounts of single files, or -1
  const AppVolume* volumes = nullptr;
  std::size_t nvolumes = 0;
};

// The rootfs mount point as this mount namespace sees it, checked to be the directory
// the caller chose (O_PATH fd), or -1 with *err set. Opened while the process still has
// the caller's ids: the store's directories above it are the caller's (0700), which a
// pod's ids from a lease cannot pass.
[[nodiscard]] int open_root_point(const RootSetup& setup, int* err) noexcept;

// Attaches the root at `point` (open_root_point), fills it and pivots into it. The
// caller is in a fresh mount namespace whose mounts are slaves.
[[nodiscard]] int setup_root(const RootSetup& setup, const AppRoot& app, int point, int* err) noexcept;

// The init, once the apps have their own mount namespaces: pivots into an empty
// read-only tmpfs on the rootfs mount point, so nothing joining its mount namespace
// (a `pod enter` aimed at the init) sees the host's filesystem.
[[nodiscard]] int seal_init_root(const RootSetup& setup, int* err) noexcept;

// Opens `path` inside `root` (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), creating the
// missing directories (and the last component as an empty file unless `dir`).
[[nodiscard]] int make_path_in_root(int root, const char* path, bool dir) noexcept;

}  // namespace pod::runtime::detail
