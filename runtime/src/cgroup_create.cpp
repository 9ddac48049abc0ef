// Making a pod's cgroups, and writing its limits once its init is in them: cgroup v2 (memory.max, memory.swap.max,
// cpu.max, cpu.weight, pids.max, io.max, cpuset.cpus) or v1 (memory.limit_in_bytes and
// memsw, cfs quota and shares, pids.max, blkio.throttle.*, cpuset).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "cgroup_files.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

using namespace detail;

namespace {

constexpr std::uint64_t kCpuPeriodUs = 100000;

sys::Result<void> make_dir(const std::string& dir, bool exist_ok) {
  if (::mkdir(dir.c_str(), 0755) == 0 || (exist_ok && errno == EEXIST)) return {};
  return sys::sys_error("making cgroup '{}'", dir);
}

// "+memory +pids" for those not enabled yet in dir's cgroup.subtree_control.
sys::Result<void> enable(const std::string& dir, const std::vector<std::string>& controllers) {
  auto on = words(read_control(dir + "/cgroup.subtree_control").value_or(""));
  std::string add;
  for (auto& c : controllers)
    if (std::find(on.begin(), on.end(), c) == on.end()) add += (add.empty() ? "+" : " +") + c;
  if (add.empty()) return {};
  return write_control(dir + "/cgroup.subtree_control", add);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

sys::Result<void> write_v2_limits(const std::string& dir, const Limits& l) {
  if (l.memory) {
    POD_TRY(write_control(dir + "/memory.max", std::to_string(*l.memory)));
    if (exists(dir + "/memory.swap.max")) POD_TRY(write_control(dir + "/memory.swap.max", "0"));
  }
  if (l.cpu_millis) {
    POD_TRY(write_control(dir + "/cpu.max", fmt::format("{} {}", *l.cpu_millis * kCpuPeriodUs / 1000, kCpuPeriodUs)));
    // The default weight 100 is one cpu's worth.
    POD_TRY(write_control(dir + "/cpu.weight", std::to_string(std::clamp<std::uint32_t>(*l.cpu_millis / 10, 1, 10000))));
  }
  if (l.pids) POD_TRY(write_control(dir + "/pids.max", std::to_string(*l.pids)));
  std::map<std::pair<unsigned, unsigned>, std::string> io;
  auto add = [&](const std::vector<DeviceLimit>& v, const char* key) {
    for (auto& d : v) io[{d.major, d.minor}] += fmt::format(" {}={}", key, d.value);
  };
  add(l.read_bps, "rbps");
  add(l.write_bps, "wbps");
  add(l.read_iops, "riops");
  add(l.write_iops, "wiops");
  for (auto& [dev, settings] : io) POD_TRY(write_control(dir + "/io.max", fmt::format("{}:{}{}", dev.first, dev.second, settings)));
  if (!l.cpuset_cpus.empty()) POD_TRY(write_control(dir + "/cpuset.cpus", l.cpuset_cpus));
  return {};
}

bool has(const V1Hierarchy& h, std::string_view c) {
  return std::find(h.controllers.begin(), h.controllers.end(), c) != h.controllers.end();
}

// A new cpuset cgroup has no cpus and no mems: nothing could run in it until copied.
sys::Result<void> inherit_cpuset(const std::string& parent, const std::string& dir) {
  for (const char* f : {"/cpuset.cpus", "/cpuset.mems"}) {
    auto mine = read_control(dir + f);
    if (mine && !mine->empty()) continue;
    auto theirs = read_control(parent + f);
    if (!theirs) return sys::make_error(EIO, "cannot read '{}{}'", parent, f);
    POD_TRY(write_control(dir + f, *theirs));
  }
  return {};
}

sys::Result<void> write_v1_limits(const V1Hierarchy& h, const std::string& dir, const Limits& l) {
  if (has(h, "memory") && l.memory) {
    POD_TRY(write_control(dir + "/memory.limit_in_bytes", std::to_string(*l.memory)));
    if (exists(dir + "/memory.memsw.limit_in_bytes"))
      POD_TRY(write_control(dir + "/memory.memsw.limit_in_bytes", std::to_string(*l.memory)));
  }
  if (has(h, "cpu") && l.cpu_millis) {
    POD_TRY(write_control(dir + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)));
    POD_TRY(write_control(dir + "/cpu.cfs_quota_us", std::to_string(*l.cpu_millis * kCpuPeriodUs / 1000)));
    POD_TRY(write_control(dir + "/cpu.shares", std::to_string(std::max<std::uint64_t>(2, *l.cpu_millis * 1024ULL / 1000))));
  }
  if (has(h, "pids") && l.pids) POD_TRY(write_control(dir + "/pids.max", std::to_string(*l.pids)));
  if (has(h, "blkio")) {
    auto put = [&](const std::vector<DeviceLimit>& v, const char* file) -> sys::Result<void> {
      for (auto& d : v) POD_TRY(write_control(dir + file, fmt::format("{}:{} {}", d.major, d.minor, d.value)));
      return {};
    };
    POD_TRY(put(l.read_bps, "/blkio.throttle.read_bps_device"));
    POD_TRY(put(l.write_bps, "/blkio.throttle.write_bps_device"));
    POD_TRY(put(l.read_iops, "/blkio.throttle.read_iops_device"));
    POD_TRY(put(l.write_iops, "/blkio.throttle.write_iops_device"));
  }
  if (has(h, "cpuset") && !l.cpuset_cpus.empty()) POD_TRY(write_control(dir + "/cpuset.cpus", l.cpuset_cpus));
  return {};
}

// Removes the pod cgroups made so far unless disarmed.
struct Made {
  std::vector<std::string> dirs;
  bool armed = true;
  ~Made() {
    if (!armed) return;
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  }
};

sys::Result<PodCgroups> create_v2(const CgroupPlace& p, const Limits& l) {
  const std::string& base = p.v2_base;
  const std::string dir = p.dirs.at(0);
  auto controllers = l.controllers();
  Made made;
  if (p.move_self) {
    const std::string& leaf = p.dirs.at(1);
    POD_TRY(make_dir(leaf, true));
    POD_TRY_CTX(write_control(leaf + "/cgroup.procs", "0"), "moving pod run into a leaf cgroup of its own");
  }
  POD_TRY_CTX(enable(base, controllers), "enabling the controllers of cgroup {}", base);
  const std::string parent = fmt::format("{}/{}", base, kPodParent);
  POD_TRY(make_dir(parent, true));
  POD_TRY_CTX(enable(parent, controllers), "enabling the controllers of cgroup {}", parent);
  POD_TRY(make_dir(dir, false));
  made.dirs.push_back(dir);
  PodCgroups out;
  out.version = CgroupVersion::v2;
  out.dirs = p.dirs;
  out.v2_dir = POD_TRY(sys::open_at(sys::FdRef::cwd(), dir, O_RDONLY | O_DIRECTORY));
  made.armed = false;
  return out;
}

sys::Result<PodCgroups> create_v1(const CgroupPlace& p) {
  Made made;
  for (std::size_t i = 0; i < p.v1.size(); ++i) {
    const V1Hierarchy& h = p.v1[i];
    const std::string& dir = p.dirs.at(i);
    const std::string parent = fmt::format("{}/{}", h.mount, kPodParent);
    POD_TRY(make_dir(parent, true));
    if (has(h, "cpuset")) POD_TRY_CTX(inherit_cpuset(h.mount, parent), "cgroup {}", parent);
    POD_TRY(make_dir(dir, false));
    made.dirs.push_back(dir);
    if (has(h, "cpuset")) POD_TRY_CTX(inherit_cpuset(parent, dir), "cgroup {}", dir);
  }
  PodCgroups out;
  out.version = CgroupVersion::v1;
  out.dirs = p.dirs;
  out.v1 = p.v1;
  for (const auto& dir : p.dirs)
    out.v1_tasks.push_back(POD_TRY_CTX(sys::open_at(sys::FdRef::cwd(), dir + "/tasks", O_WRONLY | O_CLOEXEC),
                                       "cgroup {}", dir));
  made.armed = false;
  return out;
}

}  // namespace

sys::Result<PodCgroups> create_cgroups(const CgroupPlace& place, const Limits& limits) {
  if (place.version == CgroupVersion::v2) return create_v2(place, limits);
  return create_v1(place);
}

sys::Result<void> write_limits(const PodCgroups& c, const Limits& limits) {
  if (c.version == CgroupVersion::v2) {
    POD_TRY_CTX(write_v2_limits(c.dirs.at(0), limits), "setting the limits of cgroup {}", c.dirs.at(0));
    return {};
  }
  for (std::size_t i = 0; i < c.v1.size(); ++i)
    POD_TRY_CTX(write_v1_limits(c.v1[i], c.dirs.at(i), limits), "setting the limits of cgroup {}", c.dirs.at(i));
  return {};
}

}  // namespace pod::runtime
