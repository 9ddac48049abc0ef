// Small reads and writes of cgroup control files, by absolute path.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/runtime/cgroup.hpp"

namespace pod::runtime::detail {

inline constexpr std::string_view kCgroupRoot = "/sys/fs/cgroup";
inline constexpr std::string_view kPodParent = "pod";         // the parent of every pod's cgroup
inline constexpr std::string_view kRunLeafPrefix = "pod-run-";  // v2: where `pod run` moves itself

// One write(2) of `text` to an existing control file (cgroup files take one value per write).
[[nodiscard]] sys::Result<void> write_control(const std::string& path, std::string_view text);
// The file's contents without the trailing newline; nullopt when it cannot be read.
[[nodiscard]] std::optional<std::string> read_control(const std::string& path);
[[nodiscard]] std::vector<std::string> words(std::string_view text);

// cgroup2 mounted at /sys/fs/cgroup (a pure v2 host).
[[nodiscard]] bool unified_host();
// The v1 hierarchies mounted on this host, from /proc/self/mountinfo.
[[nodiscard]] sys::Result<std::vector<V1Hierarchy>> v1_hierarchies();

// "/sys/fs/cgroup/.../pod/<uuid>" names the pod `uuid`'s cgroup.
[[nodiscard]] bool is_pod_cgroup(std::string_view dir, std::string_view uuid);

}  // namespace pod::runtime::detail
