// pod run's limit flags (--memory, --cpus, --pids, --io-*, --cpuset-cpus) read into
// runtime::Limits, and the cgroup part of --plan.
#pragma once

#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "pod/runtime/cgroup.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

[[nodiscard]] sys::Result<runtime::Limits> limits_from_flags(const RunArgs& a);

// "v1: /sys/fs/cgroup/memory/pod/<uuid> ...; memory 512M, cpus 1.5" or "none (no limits asked)".
[[nodiscard]] std::string cgroup_plan_text(const Plan& p);
[[nodiscard]] nlohmann::json cgroup_plan_json(const Plan& p);

// The pod's cgroups, made on a thread of their own while pod run makes the pod's files:
// both are mkdirs at some 50-100 us each (cgroupfs, the store's filesystem), and the
// machine has a second core. take() waits for them; destroyed untaken (pod run failed
// meanwhile), it removes what was made.
class CgroupMaker {
 public:
  CgroupMaker(runtime::CgroupPlace place, runtime::Limits limits, std::string uuid);
  CgroupMaker(const CgroupMaker&) = delete;
  CgroupMaker& operator=(const CgroupMaker&) = delete;
  ~CgroupMaker();
  [[nodiscard]] sys::Result<runtime::PodCgroups> take();

 private:
  std::optional<sys::Result<runtime::PodCgroups>> made_;
  std::string uuid_;
  std::thread thread_;  // last: started once the members it writes exist
};

}  // namespace pod::cmd
