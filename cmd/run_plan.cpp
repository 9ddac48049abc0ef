// pod run --plan: what would be done, without doing it.
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "pod/sys/progress.hpp"
#include "run_cgroup.hpp"
#include "run_net.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

namespace {

const char* seccomp_name(const runtime::Security& s) {
  switch (s.seccomp) {
    case runtime::Security::Seccomp::default_profile: return "default";
    case runtime::Security::Seccomp::unconfined: return "unconfined";
    case runtime::Security::Seccomp::file: return "file";
  }
  return "?";
}

std::vector<std::string> cap_names(const runtime::Security& s) {
  std::vector<std::string> out;
  for (int c : s.caps) out.push_back(runtime::cap_name(c));
  return out;
}

struct MountLine {
  std::string target, what;
};

std::vector<MountLine> mount_lines(const Plan& p, std::size_t app) {
  const PlannedApp& a = p.apps[app];
  std::vector<MountLine> m;
  std::string lowers = fmt::format("{} layer{}", a.layers.size(), a.layers.size() == 1 ? "" : "s");
  std::string engine = runtime::engine_name(p.engine.engine);
  if (p.engine.metacopy) engine += ", each under its metadata-only shifted copy, metacopy=on";
  m.push_back({"/", fmt::format("overlay of {} ({}) under pods/{}/upper{}, volatile (fsync and sync skip the disk)",
                                lowers, engine, p.uuid, app_dir_suffix(p, app))});
  m.push_back({"/proc", "proc; kcore, keys, timer_list, sysrq-trigger and others masked; sys, bus, fs, irq read-only"});
  m.push_back({"/sys", p.net == "host" ? "the host's /sys, read-only" : "sysfs, read-only"});
  m.push_back({"/dev", "tmpfs with null, zero, full, random, urandom, tty"});
  m.push_back({"/dev/pts", "devpts, a new instance"});
  m.push_back({"/dev/shm", "tmpfs"});
  m.push_back({"/dev/mqueue", "mqueue"});
  if (p.cgroup && p.cgroup->version == runtime::CgroupVersion::v1) {
    std::string names;
    for (auto& h : p.cgroup->v1) names += fmt::format("{}{}", names.empty() ? "" : ", ", fmt::join(h.controllers, ","));
    m.push_back({"/sys/fs/cgroup", "tmpfs with the pod's cgroup v1 hierarchies (" + names + "), read-only"});
  } else {
    m.push_back({"/sys/fs/cgroup", "cgroup2 of the pod's cgroup namespace, read-only"});
  }
  m.push_back({"/etc/hosts", "localhost and " + p.hostname});
  if (p.net == "host" || p.net == "bridge") m.push_back({"/etc/resolv.conf", "the host's"});
  if (p.net == "slirp") m.push_back({"/etc/resolv.conf", "the helper's DNS forwarder"});
  for (const auto& v : p.volumes) m.push_back({v.substr(v.find(':') + 1), "volume " + v});
  return m;
}

}  // namespace

void print_plan(const Plan& p, bool json) {
  const PodMaps& m = p.maps;
  std::string lease = m.lease ? m.lease->name : "";
  if (json) {
    nlohmann::json j;
    j["name"] = p.name;
    j["uuid"] = p.uuid;
    j["hostname"] = p.hostname;
    j["userns"] = {{"policy", m.policy}, {"new", m.new_userns}, {"uid_map", m.host.uids.str()},
                   {"gid_map", m.host.gids.str()}, {"lease", lease.empty() ? nlohmann::json() : nlohmann::json(lease)}};
    j["rootfs"] = {{"engine", runtime::engine_name(p.engine.engine)},
                   {"reason", p.engine.reason},
                   {"metacopy", p.engine.metacopy}};
    j["net"] = p.net;
    j["network"] = network_json(p);
    j["cgroup"] = cgroup_plan_json(p);
    j["isolators"] = isolators_json(p);
    j["disk"] = p.disk ? nlohmann::json{{"bytes", p.disk->bytes},
                                        {"kind", runtime::disk_kind_name(p.disk->how.kind)},
                                        {"reason", p.disk->how.reason}}
                       : nlohmann::json();
    for (std::size_t i = 0; i < p.apps.size(); ++i) {
      const PlannedApp& a = p.apps[i];
      nlohmann::json app = {{"name", a.app.name},      {"image", a.image},        {"digest", a.image_digest},
                            {"layers", a.layers},      {"argv", a.app.argv},      {"env", a.app.env},
                            {"workdir", a.app.workdir}, {"uid", a.app.uid},       {"gid", a.app.gid},
                            {"caps", cap_names(a.app.security)}, {"seccomp", seccomp_name(a.app.security)},
                            {"no_new_privileges", a.app.security.no_new_privs}};
      for (const auto& ml : mount_lines(p, i)) app["mounts"].push_back({{"target", ml.target}, {"source", ml.what}});
      for (const auto& v : p.volumes) app["volumes"].push_back(v);
      j["apps"].push_back(app);
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("pod        %s (%s), hostname %s\n", p.name.c_str(), p.uuid.c_str(), p.hostname.c_str());
  std::printf("userns     %s%s: uid map %s, gid map %s%s\n", m.policy.c_str(),
              m.new_userns ? "" : " (the store's own user namespace)", m.host.uids.str().c_str(),
              m.host.gids.str().c_str(), lease.empty() ? "" : fmt::format(", lease '{}'", lease).c_str());
  std::printf("rootfs     %s: %s\n", runtime::engine_name(p.engine.engine), p.engine.reason.c_str());
  std::printf("net        %s\n", describe_network(p).c_str());
  std::printf("cgroup     %s\n", cgroup_plan_text(p).c_str());
  print_isolators(p);
  if (p.disk)
    std::printf("disk       %s by %s: %s\n", sys::human_bytes(p.disk->bytes).c_str(),
                runtime::disk_kind_name(p.disk->how.kind), p.disk->how.reason.c_str());
  for (std::size_t i = 0; i < p.apps.size(); ++i) {
    const PlannedApp& a = p.apps[i];
    std::string argv;
    for (const auto& s : a.app.argv) argv += (argv.empty() ? "" : " ") + s;
    std::printf("app %s    %s (%s)\n", a.app.name.c_str(), a.image.c_str(), a.image_digest.c_str());
    std::printf("  exec     %s\n  user     %u:%u, workdir %s\n", argv.c_str(), a.app.uid, a.app.gid,
                a.app.workdir.c_str());
    std::string caps;
    for (const auto& c : cap_names(a.app.security)) caps += (caps.empty() ? "" : ",") + c;
    std::printf("  caps     %s\n  seccomp  %s, no_new_privs %s\n", caps.c_str(), seccomp_name(a.app.security),
                a.app.security.no_new_privs ? "yes" : "no");
    std::printf("  mounts\n");
    for (const auto& ml : mount_lines(p, i)) std::printf("    %-16s %s\n", ml.target.c_str(), ml.what.c_str());
  }
}

}  // namespace pod::cmd
