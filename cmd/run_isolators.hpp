// pod run: the images' ACI isolators (runtime/aci_isolators.hpp) under the flags, and
// where each setting came from, for --plan. A flag wins over every image; limits are
// the pod's (one cgroup per pod), so the apps' declared limits add up.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pod/sys/error.hpp"

namespace pod::cmd {

struct RunArgs;
struct Plan;
struct ImageLayers;

// One setting of the pod or an app that an image isolator or a flag decided.
struct IsolatorSource {
  std::string app;          // "": the pod's (memory, cpus)
  std::string setting;      // memory, cpus, caps, no_new_privileges, seccomp, oom_score_adj
  std::string text;         // the value for people: "64M", "CAP_KILL,CAP_CHOWN"
  nlohmann::json value;     // the value for --json
  std::string source;       // "image" or "flag"
  std::string from;         // the isolator ("resource/memory") or the flag ("--memory")
  std::vector<std::string> apps;  // pod settings from images: the apps that declared one
  std::string overrides;    // a flag's: the image isolators it wins over, with their values
};

// Sets each app's security and the pod's limits from its image's isolators wherever no
// flag set them; records every setting an isolator or a flag decided in plan.isolators,
// and what could not be applied in plan.isolator_notes (also given to `warn` on a real
// run). Call once plan.apps, plan.limits and plan.maps hold what the flags asked.
[[nodiscard]] sys::Result<void> apply_isolators(const RunArgs& a, const std::vector<ImageLayers>& images, Plan& plan,
                                                const std::function<void(const std::string&)>& warn);

// The isolators part of --plan.
void print_isolators(const Plan& plan);
[[nodiscard]] nlohmann::json isolators_json(const Plan& plan);

}  // namespace pod::cmd
