// A pod's cgroups: the limits of `pod run` (--memory, --cpus, --pids, the io limits,
// --cpuset-cpus), where the pod's cgroups go (a delegated cgroup v2 subtree, or a `pod`
// parent in each cgroup v1 hierarchy for root), making them, and removing them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

struct DeviceLimit {
  std::string device;  // as given: "/dev/vda"
  unsigned major = 0, minor = 0;
  std::uint64_t value = 0;  // bytes per second, or operations per second
};

struct Limits {
  std::optional<std::uint64_t> memory;      // bytes; swap is not allowed beyond it
  std::optional<std::uint32_t> cpu_millis;  // --cpus 1.5 -> 1500 (quota per 100 ms period)
  std::optional<std::uint64_t> pids;
  std::vector<DeviceLimit> read_bps, write_bps, read_iops, write_iops;
  std::string cpuset_cpus;  // "0-1,3"
  [[nodiscard]] bool empty() const;
  // The cgroup v2 controllers these need: memory, cpu, pids, io, cpuset.
  [[nodiscard]] std::vector<std::string> controllers() const;
  // "memory 512M, cpus 1.5, pids 100, io read 10M/s on /dev/vda (254:0), cpuset 0-1"
  [[nodiscard]] std::string describe() const;
};

// Flag values. Errors name the flag and the value: "--memory '12X': ...".
// "512M", "1G", "1.5g", "4096": K, M, G, T are powers of 1024; an optional B or iB after.
[[nodiscard]] sys::Result<std::uint64_t> parse_size(std::string_view flag, std::string_view value);
// "1.5" -> 1500: at most three decimals, more than 0.
[[nodiscard]] sys::Result<std::uint32_t> parse_cpus(std::string_view flag, std::string_view value);
// A positive integer.
[[nodiscard]] sys::Result<std::uint64_t> parse_count(std::string_view flag, std::string_view value);
// "DEV:RATE" (size = true: a size per second) or "DEV:N": the device path and the value.
struct DeviceValue {
  std::string device;
  std::uint64_t value = 0;
};
[[nodiscard]] sys::Result<DeviceValue> parse_device_value(std::string_view flag, std::string_view value, bool size);
// As parse_device_value, the device resolved to its major:minor (a block device).
[[nodiscard]] sys::Result<DeviceLimit> parse_device_limit(std::string_view flag, std::string_view value, bool size);
// "0-2,4": cpu numbers and ranges, ascending within a range.
[[nodiscard]] sys::Result<std::string> parse_cpu_list(std::string_view flag, std::string_view value);

enum class CgroupVersion { v1, v2 };

// One cgroup v1 hierarchy the pod is placed in.
struct V1Hierarchy {
  std::string mount;                     // "/sys/fs/cgroup/memory"
  std::vector<std::string> controllers;  // "memory"; "cpu", "cpuacct" when mounted together
};

// Where a pod's cgroups go, decided without writing anything (`pod run --plan` shows it).
struct CgroupPlace {
  CgroupVersion version = CgroupVersion::v2;
  // v2: the delegated cgroup the `pod` parent is made in, and whether `pod run` must
  // first move itself into a leaf of it (the no-internal-processes rule).
  std::string v2_base;
  bool move_self = false;
  std::vector<V1Hierarchy> v1;
  std::vector<std::string> dirs;  // the pod's cgroups: ".../pod/<uuid>"
};

// cgroup v2 (a pure v2 host): the top of the caller's delegated subtree (the highest
// cgroup above the caller's own whose cgroup.procs and cgroup.subtree_control are the
// caller's), and the controllers it offers. EACCES, with the fix, when the caller's own
// cgroup is not delegated; ENOTSUP on a cgroup v1 or hybrid host.
struct Delegation {
  std::string dir;  // "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
  std::vector<std::string> controllers;
};
[[nodiscard]] sys::Result<Delegation> delegated_cgroup();

// Where the pod `uuid` with these (non-empty) limits goes. `rootless`: an ordinary user,
// who has no cgroup v1 delegation. A controller that is not delegated is an error naming
// it and the systemd drop-in that delegates it.
[[nodiscard]] sys::Result<CgroupPlace> place_cgroups(const Limits& limits, std::string_view uuid, bool rootless);

// The pod's cgroups, made, with no limits yet: write_limits writes them while the pod's
// apps set up their roots (PodSpec::limits), off the path of the pod's start.
struct PodCgroups {
  CgroupVersion version = CgroupVersion::v2;
  std::vector<std::string> dirs;  // recorded in the pod record, removed with the pod
  sys::Fd v2_dir;                 // v2: the pod's cgroup, for clone3 CLONE_INTO_CGROUP
  std::vector<V1Hierarchy> v1;    // v1: the hierarchies, mounted read-only inside the pod
  std::vector<sys::Fd> v1_tasks;  // v1: each cgroup's `tasks`, open for writing: the init moves itself
};
// On failure, whatever was made is removed again.
[[nodiscard]] sys::Result<PodCgroups> create_cgroups(const CgroupPlace& place, const Limits& limits);
// memory, cpu, pids, io and cpuset limits into the pod's cgroups. (A memory limit below
// what the pod uses by then is refused by cgroup v1: EBUSY.)
[[nodiscard]] sys::Result<void> write_limits(const PodCgroups& cgroups, const Limits& limits);

// Removes the pod's cgroups, retrying briefly while the kernel reaps its processes.
// Only directories named ".../pod/<uuid>" (and the caller's ".../pod-run-<pid>" leaf,
// when empty) are touched; missing ones are fine.
[[nodiscard]] sys::Result<void> remove_cgroups(const std::vector<std::string>& dirs, std::string_view uuid);

// How often the kernel's OOM killer killed in the pod's memory cgroup (v2 memory.events
// oom_kill, v1 memory.oom_control oom_kill); nullopt when no memory cgroup can be read.
[[nodiscard]] std::optional<std::uint64_t> oom_kills(const std::vector<std::string>& dirs);

// The cgroup.procs files that `pod enter` writes itself into: those of the pod's cgroups.
[[nodiscard]] std::vector<std::string> cgroup_procs_files(const std::vector<std::string>& dirs, std::string_view uuid);

}  // namespace pod::runtime
