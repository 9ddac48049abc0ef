// /proc/self/mountinfo, parsed: one entry per mount of the caller's mount namespace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"

namespace pod::sys {

struct MountInfo {
  std::uint64_t id = 0, parent = 0;
  std::string root;         // the mounted directory of its filesystem
  std::string mount_point;  // octal escapes (\040 for a space) undone
  std::string fstype;       // "cgroup", "overlay", ...
  std::string source;
  std::string super_options;  // "rw,memory"
};

// The lines of `text` (mountinfo's format); lines that do not parse are skipped.
[[nodiscard]] std::vector<MountInfo> parse_mountinfo(std::string_view text);
[[nodiscard]] Result<std::vector<MountInfo>> read_mountinfo();

}  // namespace pod::sys
