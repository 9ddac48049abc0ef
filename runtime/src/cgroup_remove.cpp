// After the pod: how often the OOM killer struck, and the pod's cgroups removed.
#include <time.h>
#include <unistd.h>

#include <cstdlib>

#include "cgroup_files.hpp"

namespace pod::runtime {

using namespace detail;

namespace {

// "key N" lines (memory.events, memory.oom_control).
std::optional<std::uint64_t> keyed(const std::string& path, std::string_view key) {
  auto text = read_control(path);
  if (!text) return std::nullopt;
  auto w = words(*text);
  for (std::size_t i = 0; i + 1 < w.size(); ++i)
    if (w[i] == key) return std::strtoull(w[i + 1].c_str(), nullptr, 10);
  return std::nullopt;
}

bool is_run_leaf(std::string_view dir) {
  auto slash = dir.rfind('/');
  std::string_view name = dir.substr(slash + 1);
  return dir.starts_with(std::string(kCgroupRoot) + "/") && name.starts_with(kRunLeafPrefix) &&
         name.size() > kRunLeafPrefix.size() &&
         name.find_first_not_of("0123456789", kRunLeafPrefix.size()) == std::string_view::npos &&
         dir.find("/../") == std::string_view::npos;
}

}  // namespace

sys::Result<void> remove_cgroups(const std::vector<std::string>& dirs, std::string_view uuid) {
  for (auto& d : dirs) {
    if (is_run_leaf(d)) {
      (void)::rmdir(d.c_str());  // still holding a `pod run` (EBUSY): the next removal tries again
      continue;
    }
    if (!is_pod_cgroup(d, uuid)) return sys::make_error(EINVAL, "'{}' is not the cgroup of pod {}: left alone", d, uuid);
    // The kernel frees a cgroup a moment after its last process is reaped.
    for (int attempt = 0;; ++attempt) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || attempt == 200) return sys::sys_error("removing cgroup '{}'", d);
      timespec ts{0, 5'000'000};
      ::nanosleep(&ts, nullptr);
    }
  }
  return {};
}

std::optional<std::uint64_t> oom_kills(const std::vector<std::string>& dirs) {
  for (auto& d : dirs) {
    if (auto v = keyed(d + "/memory.events", "oom_kill")) return v;
    if (auto v = keyed(d + "/memory.oom_control", "oom_kill")) return v;
  }
  return std::nullopt;
}

std::vector<std::string> cgroup_procs_files(const std::vector<std::string>& dirs, std::string_view uuid) {
  std::vector<std::string> out;
  for (auto& d : dirs)
    if (is_pod_cgroup(d, uuid)) out.push_back(d + "/cgroup.procs");
  return out;
}

}  // namespace pod::runtime
