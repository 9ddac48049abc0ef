#include "run_isolators.hpp"

#include <unistd.h>

#include <cstdio>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pod/runtime/aci_isolators.hpp"
#include "run_pod.hpp"
#include "run_setup.hpp"

namespace pod::cmd {

namespace {

using nlohmann::json;

constexpr std::string_view kMemory = "resource/memory", kCpu = "resource/cpu";

std::vector<std::string> cap_names(const std::vector<int>& caps) {
  std::vector<std::string> out;
  for (int c : caps) out.push_back(runtime::cap_name(c));
  return out;
}

std::string memory_text(std::uint64_t bytes) {
  runtime::Limits l;
  l.memory = bytes;
  return l.describe();  // "memory 64M"
}

std::string cpus_text(std::uint32_t millis) {
  runtime::Limits l;
  l.cpu_millis = millis;
  return l.describe();  // "cpus 0.5"
}

std::string seccomp_text(const runtime::AciSeccomp& s) {
  if (s.unconfined) return "seccomp unconfined (a retain-set of @appc.io/all)";
  if (s.default_profile) return "seccomp default (a remove-set of @appc.io/empty)";
  return fmt::format("seccomp {} {}, refused calls {}", s.retain ? "retain-set" : "remove-set",
                     fmt::join(s.entries, ","),
                     s.errno_ret ? "fail with " + sys::errno_name(*s.errno_ret) : std::string("kill the app (SIGSYS)"));
}

json seccomp_json(const runtime::AciSeccomp& s) {
  std::string mode = s.unconfined ? "unconfined" : s.default_profile ? "default" : s.retain ? "retain-set" : "remove-set";
  return {{"mode", mode}, {"set", s.entries},
          {"errno", s.errno_ret ? json(sys::errno_name(*s.errno_ret)) : json(nullptr)}};
}

sys::Result<void> apply_seccomp(runtime::Security& sec, const runtime::AciSeccomp& s) {
  if (s.unconfined) {
    sec.seccomp = runtime::Security::Seccomp::unconfined;
  } else if (s.default_profile) {
    sec.seccomp = runtime::Security::Seccomp::default_profile;
  } else {
    sec.seccomp = runtime::Security::Seccomp::file;
    sec.seccomp_file = POD_TRY(runtime::aci_seccomp_profile(s, !sec.no_new_privs));
  }
  return {};
}

// The names of the flags given, comma separated: "--cap-retain, --cap-remove".
std::string flags_given(std::initializer_list<std::pair<const char*, bool>> flags) {
  std::string out;
  for (auto& [name, given] : flags)
    if (given) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

// A limit of the pod from the apps' isolators: the sum of those the apps declare.
struct Declared {
  std::vector<std::string> apps, values;
  std::uint64_t sum = 0;
  [[nodiscard]] std::string text() const {
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < apps.size(); ++i) parts.push_back(fmt::format("{} of app {}", values[i], apps[i]));
    return fmt::format("{}", fmt::join(parts, ", "));
  }
};

}  // namespace

sys::Result<void> apply_isolators(const RunArgs& a, const std::vector<ImageLayers>& images, Plan& plan,
                                  const std::function<void(const std::string&)>& warn) {
  Declared memory, cpus;
  for (std::size_t i = 0; i < plan.apps.size(); ++i) {
    runtime::App& app = plan.apps[i].app;
    runtime::Security& sec = app.security;
    const auto& iso = images.at(i).app.isolators;
    auto add = [&](std::string setting, std::string text, json value, bool flag, std::string from,
                   std::string overrides = {}) {
      plan.isolators.push_back({app.name, std::move(setting), std::move(text), std::move(value),
                                flag ? "flag" : "image", std::move(from), {}, std::move(overrides)});
    };
    if (iso && iso->memory) {
      memory.apps.push_back(app.name);
      memory.values.push_back(memory_text(*iso->memory).substr(7));
      memory.sum += *iso->memory;
      if (memory.sum > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return sys::make_error(ERANGE, "the apps' {} limits add up to more than the kernel takes", kMemory);
    }
    if (iso && iso->cpu_millis) {
      cpus.apps.push_back(app.name);
      cpus.values.push_back(cpus_text(*iso->cpu_millis).substr(5));
      cpus.sum += *iso->cpu_millis;
      if (cpus.sum > 4096 * 1000) return sys::make_error(ERANGE, "the apps' {} limits add up to more than 4096 cpus", kCpu);
    }

    // Capabilities: a flag replaces the image's set, as rkt's --caps-retain/--caps-remove did.
    std::string cap_flags = flags_given({{"--cap-retain", !a.cap_retain.empty()}, {"--cap-remove", !a.cap_remove.empty()}});
    std::string image_caps;
    if (iso && iso->caps_retain)
      image_caps = fmt::format("os/linux/capabilities-retain-set {}", fmt::join(cap_names(*iso->caps_retain), ","));
    if (iso && iso->caps_remove)
      image_caps = fmt::format("os/linux/capabilities-remove-set {}", fmt::join(cap_names(*iso->caps_remove), ","));
    if (!cap_flags.empty()) {
      add("caps", fmt::format("caps {}", fmt::join(cap_names(sec.caps), ",")), cap_names(sec.caps), true, cap_flags,
          image_caps);
    } else if (iso && (iso->caps_retain || iso->caps_remove)) {
      if (iso->caps_retain) {
        sec.caps = *iso->caps_retain;
      } else {
        sec.caps = runtime::default_caps();
        for (int c : *iso->caps_remove) std::erase(sec.caps, c);
      }
      add("caps", fmt::format("caps {}", fmt::join(cap_names(sec.caps), ",")), cap_names(sec.caps), false,
          iso->caps_retain ? "os/linux/capabilities-retain-set" : "os/linux/capabilities-remove-set");
    }

    // no_new_privs before seccomp: it decides when the filter is loaded.
    std::string image_nnp = iso && iso->no_new_privs
                                ? fmt::format("os/linux/no-new-privileges {}", *iso->no_new_privs)
                                : std::string();
    if (a.no_new_privs) {
      add("no_new_privileges", "no_new_privs yes", true, true, "--no-new-privileges", image_nnp);
    } else if (iso && iso->no_new_privs) {
      sec.no_new_privs = *iso->no_new_privs;
      add("no_new_privileges", sec.no_new_privs ? "no_new_privs yes" : "no_new_privs no", sec.no_new_privs, false,
          "os/linux/no-new-privileges");
    }

    std::string image_seccomp;
    if (iso && iso->seccomp)
      image_seccomp = fmt::format("os/linux/seccomp-{}-set {}", iso->seccomp->retain ? "retain" : "remove",
                                  fmt::join(iso->seccomp->entries, ","));
    if (!a.seccomp.empty()) {
      add("seccomp", "seccomp " + a.seccomp, a.seccomp, true, "--seccomp", image_seccomp);
    } else if (iso && iso->seccomp) {
      POD_TRY_CTX(apply_seccomp(sec, *iso->seccomp), "image '{}': isolator os/linux/seccomp-{}-set",
                  plan.apps[i].image, iso->seccomp->retain ? "retain" : "remove");
      add("seccomp", seccomp_text(*iso->seccomp), seccomp_json(*iso->seccomp), false,
          fmt::format("os/linux/seccomp-{}-set", iso->seccomp->retain ? "retain" : "remove"));
    }

    // Lowering the score needs CAP_SYS_RESOURCE of the host (capable(), not ns_capable()).
    if (iso && iso->oom_score_adj && *iso->oom_score_adj < 0 && (plan.maps.new_userns || ::geteuid() != 0)) {
      std::string why = fmt::format(
          "app {}: image isolator os/linux/oom-score-adj {} is not applied: lowering the OOM score needs "
          "CAP_SYS_RESOURCE on the host, which a pod in a user namespace of its own has not",
          app.name, *iso->oom_score_adj);
      plan.isolator_notes.push_back(why);
      if (!a.plan) warn(why);
    } else if (iso && iso->oom_score_adj) {
      sec.oom_score_adj = *iso->oom_score_adj;
      add("oom_score_adj", fmt::format("oom_score_adj {}", *iso->oom_score_adj), *iso->oom_score_adj, false,
          "os/linux/oom-score-adj");
    }
  }

  // The pod's limits: one cgroup for all apps.
  auto pod_limit = [&](const Declared& d, std::string_view setting, std::string_view isolator, bool flag,
                       std::string_view flag_name, auto& limit, auto sum, std::string text, json value) {
    if (flag) {
      std::string over = d.apps.empty() ? "" : fmt::format("{} {}", isolator, d.text());
      plan.isolators.push_back({"", std::string(setting), std::move(text), std::move(value), "flag",
                                std::string(flag_name), {}, over});
      return;
    }
    if (d.apps.empty()) return;
    limit = sum;
    plan.isolators.push_back({"", std::string(setting), std::move(text), std::move(value), "image",
                              std::string(isolator), d.apps, {}});
    if (d.apps.size() < plan.apps.size())
      plan.isolator_notes.push_back(
          fmt::format("{}: not every app declares a limit ({}); the pod's limit is the sum of those declared, which "
                      "the other apps share",
                      isolator, d.text()));
  };
  if (!a.memory.empty() || !memory.apps.empty()) {
    std::uint64_t v = a.memory.empty() ? memory.sum : plan.limits.memory.value_or(0);
    pod_limit(memory, "memory", kMemory, !a.memory.empty(), "--memory", plan.limits.memory, v, memory_text(v), v);
  }
  if (!a.cpus.empty() || !cpus.apps.empty()) {
    auto v = a.cpus.empty() ? static_cast<std::uint32_t>(cpus.sum) : plan.limits.cpu_millis.value_or(0);
    pod_limit(cpus, "cpus", kCpu, !a.cpus.empty(), "--cpus", plan.limits.cpu_millis, v, cpus_text(v), v / 1000.0);
  }
  return {};
}

void print_isolators(const Plan& p) {
  if (p.isolators.empty() && p.isolator_notes.empty()) return;
  std::printf("isolators\n");
  // The pod's limits first, then each app's settings.
  for (bool pod : {true, false})
    for (const auto& s : p.isolators) {
      if (s.app.empty() != pod) continue;
      std::string from = s.source == "flag" ? "flag " + s.from : "image isolator " + s.from;
      if (!s.apps.empty()) from += fmt::format(" of app{} {}", s.apps.size() == 1 ? "" : "s", fmt::join(s.apps, ", "));
      if (!s.overrides.empty()) from += ", over the image's " + s.overrides;
      std::printf("  %s: %s (%s)\n", pod ? "pod" : ("app " + s.app).c_str(), s.text.c_str(), from.c_str());
    }
  for (const auto& n : p.isolator_notes) std::printf("  note: %s\n", n.c_str());
}

json isolators_json(const Plan& p) {
  json settings = json::array();
  for (const auto& s : p.isolators) {
    json j = {{"app", s.app.empty() ? json(nullptr) : json(s.app)},
              {"setting", s.setting},
              {"value", s.value},
              {"source", s.source},
              {"from", s.from}};
    if (!s.apps.empty()) j["apps"] = s.apps;
    if (!s.overrides.empty()) j["overrides"] = s.overrides;
    settings.push_back(std::move(j));
  }
  return {{"settings", settings}, {"notes", p.isolator_notes}};
}

}  // namespace pod::cmd
