// pod run's limit flags (--memory, --cpus, --pids, --io-*, --cpuset-cpus) read into
// runtime::Limits, and the cgroup part of --plan.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "pod/runtime/cgroup.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

[[nodiscard]] sys::Result<runtime::Limits> limits_from_flags(const RunArgs& a);

// "v1: /sys/fs/cgroup/memory/pod/<uuid> ...; memory 512M, cpus 1.5" or "none (no limits asked)".
[[nodiscard]] std::string cgroup_plan_text(const Plan& p);
[[nodiscard]] nlohmann::json cgroup_plan_json(const Plan& p);

}  // namespace pod::cmd
