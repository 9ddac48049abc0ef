#include "run_cgroup.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace pod::cmd {

sys::Result<runtime::Limits> limits_from_flags(const RunArgs& a) {
  runtime::Limits l;
  if (!a.memory.empty()) l.memory = POD_TRY(runtime::parse_size("--memory", a.memory));
  if (!a.cpus.empty()) l.cpu_millis = POD_TRY(runtime::parse_cpus("--cpus", a.cpus));
  if (!a.pids.empty()) l.pids = POD_TRY(runtime::parse_count("--pids", a.pids));
  for (auto& v : a.io_read_bps) l.read_bps.push_back(POD_TRY(runtime::parse_device_limit("--io-read-bps", v, true)));
  for (auto& v : a.io_write_bps) l.write_bps.push_back(POD_TRY(runtime::parse_device_limit("--io-write-bps", v, true)));
  for (auto& v : a.io_read_iops) l.read_iops.push_back(POD_TRY(runtime::parse_device_limit("--io-read-iops", v, false)));
  for (auto& v : a.io_write_iops)
    l.write_iops.push_back(POD_TRY(runtime::parse_device_limit("--io-write-iops", v, false)));
  if (!a.cpuset_cpus.empty()) l.cpuset_cpus = POD_TRY(runtime::parse_cpu_list("--cpuset-cpus", a.cpuset_cpus));
  return l;
}

std::string cgroup_plan_text(const Plan& p) {
  if (!p.cgroup) return "none (no limits asked; the pod stays in the caller's cgroup)";
  const auto& c = *p.cgroup;
  std::string where = fmt::format("{}", fmt::join(c.dirs, " "));
  if (c.version == runtime::CgroupVersion::v2)
    return fmt::format("v2 {}{}: {}", c.dirs.at(0),
                       c.move_self ? fmt::format(" (pod run moves itself to {} first)", c.dirs.at(1)) : "",
                       p.limits.describe());
  return fmt::format("v1 {}: {}", where, p.limits.describe());
}

nlohmann::json cgroup_plan_json(const Plan& p) {
  if (!p.cgroup) return nullptr;
  const auto& c = *p.cgroup;
  const auto& l = p.limits;
  nlohmann::json limits = nlohmann::json::object();
  if (l.memory) limits["memory"] = *l.memory;
  if (l.cpu_millis) limits["cpus"] = *l.cpu_millis / 1000.0;
  if (l.pids) limits["pids"] = *l.pids;
  auto io = [&](const std::vector<runtime::DeviceLimit>& v, const char* key) {
    for (auto& d : v)
      limits[key].push_back({{"device", d.device}, {"major", d.major}, {"minor", d.minor}, {"value", d.value}});
  };
  io(l.read_bps, "io_read_bps");
  io(l.write_bps, "io_write_bps");
  io(l.read_iops, "io_read_iops");
  io(l.write_iops, "io_write_iops");
  if (!l.cpuset_cpus.empty()) limits["cpuset_cpus"] = l.cpuset_cpus;
  std::vector<std::string> pod_dirs(c.dirs.begin(), c.dirs.begin() + (c.move_self ? 1 : static_cast<long>(c.dirs.size())));
  return {{"version", c.version == runtime::CgroupVersion::v2 ? 2 : 1},
          {"paths", pod_dirs},
          {"caller_leaf", c.move_self ? nlohmann::json(c.dirs.at(1)) : nlohmann::json(nullptr)},
          {"limits", limits}};
}

}  // namespace pod::cmd
