// Where a pod's cgroups go. cgroup v2: below the caller's delegated subtree (as systemd
// delegates user@.service, or a cgroup the caller owns), found from /proc/self/cgroup and
// the owners of cgroup.procs and cgroup.subtree_control. cgroup v1 (and hybrid hosts):
// a `pod` parent in each hierarchy, for root only: v1 has no delegation.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/ranges.h>

#include "cgroup_files.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

using namespace detail;

namespace {

constexpr const char* kDelegateFix =
    "a systemd drop-in delegates it: sudo mkdir -p /etc/systemd/system/user@.service.d && printf "
    "'[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf "
    "&& sudo systemctl daemon-reload, then log in again";

std::string parent_of(const std::string& dir) { return dir.substr(0, dir.rfind('/')); }

// Ours to change: cgroup.procs and cgroup.subtree_control owned by us and writable.
bool owned(const std::string& dir) {
  for (const char* f : {"/cgroup.procs", "/cgroup.subtree_control"}) {
    std::string p = dir + f;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || st.st_uid != ::geteuid() || ::access(p.c_str(), W_OK) != 0) return false;
  }
  return true;
}

// Our cgroup v2 path ("/user.slice/..."), from the "0::" line.
sys::Result<std::string> own_cgroup() {
  std::string text = POD_TRY(sys::read_file(sys::FdRef::cwd(), "/proc/self/cgroup", 1 << 16));
  for (auto& line : words(text))
    if (line.starts_with("0::")) return line.substr(3) == "/" ? std::string() : line.substr(3);
  return sys::make_error(ENOENT, "/proc/self/cgroup has no cgroup v2 line");
}

sys::Result<CgroupPlace> place_v2(const Limits& limits, std::string_view uuid) {
  const std::string root(kCgroupRoot);
  // The top of the delegated subtree: pods go there, beside the caller's own cgroup.
  Delegation d = POD_TRY(delegated_cgroup());
  const std::string& base = d.dir;
  const auto& offered = d.controllers;
  for (auto& c : limits.controllers())
    if (std::find(offered.begin(), offered.end(), c) == offered.end())
      return sys::make_error(EPERM, "the cgroup v2 controller '{}' is not delegated to you (cgroup {} offers: {}): {}",
                             c, base.substr(root.size()).empty() ? "/" : base.substr(root.size()),
                             offered.empty() ? "none" : fmt::format("{}", fmt::join(offered, " ")), kDelegateFix);
  CgroupPlace p;
  p.version = CgroupVersion::v2;
  p.v2_base = base;
  auto enabled = words(read_control(base + "/cgroup.subtree_control").value_or(""));
  auto wanted = limits.controllers();
  bool all_enabled = std::all_of(wanted.begin(), wanted.end(),
                                 [&](auto& c) { return std::find(enabled.begin(), enabled.end(), c) != enabled.end(); });
  auto procs = words(read_control(base + "/cgroup.procs").value_or(""));
  // The root cgroup is exempt from the no-internal-processes rule.
  if (!all_enabled && !procs.empty() && base != root) {
    if (procs.size() == 1 && procs[0] == std::to_string(::getpid())) {
      p.move_self = true;
    } else {
      return sys::make_error(EBUSY, "cgroup {} holds processes ({}), so no controller can be enabled for its "
                             "children (cgroup v2's no-internal-processes rule): run pod from a child cgroup of it, "
                             "as systemd's user@.service does, or under `systemd-run --user --scope -p Delegate=yes`",
                             base.substr(root.size()), fmt::join(procs, " "));
    }
  }
  p.dirs.push_back(fmt::format("{}/{}/{}", base, kPodParent, uuid));
  if (p.move_self) p.dirs.push_back(fmt::format("{}/{}{}", base, kRunLeafPrefix, ::getpid()));
  return p;
}

// The v1 controllers a limit needs: cpuacct goes with cpu, so the pod's cpu time is counted.
std::vector<std::string> v1_controllers(const Limits& l) {
  std::vector<std::string> c;
  for (auto& v2 : l.controllers()) {
    if (v2 == "io") c.emplace_back("blkio");
    else c.push_back(v2);
    if (v2 == "cpu") c.emplace_back("cpuacct");
  }
  return c;
}

sys::Result<CgroupPlace> place_v1(const Limits& limits, std::string_view uuid, bool rootless) {
  if (rootless)
    return sys::make_error(EPERM, "limits asked ({}), but this host has cgroup v1, which is not delegated to "
                           "ordinary users: limits need root here, or cgroup v2 with a systemd Delegate= drop-in "
                           "(boot with systemd.unified_cgroup_hierarchy=1); a pod without limits runs",
                           limits.describe());
  auto all = POD_TRY_CTX(v1_hierarchies(), "finding the cgroup v1 hierarchies");
  CgroupPlace p;
  p.version = CgroupVersion::v1;
  for (auto& c : v1_controllers(limits)) {
    auto h = std::find_if(all.begin(), all.end(), [&](auto& x) {
      return std::find(x.controllers.begin(), x.controllers.end(), c) != x.controllers.end();
    });
    if (h == all.end()) return sys::make_error(ENOENT, "the cgroup v1 controller '{}' is not mounted", c);
    bool have = std::any_of(p.v1.begin(), p.v1.end(), [&](auto& x) { return x.mount == h->mount; });
    if (have) continue;
    p.v1.push_back(*h);
    p.dirs.push_back(fmt::format("{}/{}/{}", h->mount, kPodParent, uuid));
  }
  return p;
}

}  // namespace

sys::Result<Delegation> delegated_cgroup() {
  if (!unified_host()) return sys::make_error(ENOTSUP, "{} is not cgroup2 (a cgroup v1 or hybrid host)", kCgroupRoot);
  const std::string root(kCgroupRoot);
  std::string own = POD_TRY(own_cgroup());
  std::string dir = root + own;
  if (!owned(dir))
    return sys::make_error(EACCES, "your cgroup {} is not delegated to you (cgroup.procs and cgroup.subtree_control "
                           "are not yours to write): {}; or run pod under `systemd-run --user --scope -p Delegate=yes`",
                           own.empty() ? "/" : own, kDelegateFix);
  std::string base = dir;
  while (base != root && owned(parent_of(base))) base = parent_of(base);
  return Delegation{base, words(read_control(base + "/cgroup.controllers").value_or(""))};
}

sys::Result<CgroupPlace> place_cgroups(const Limits& limits, std::string_view uuid, bool rootless) {
  if (limits.empty()) return sys::make_error(EINVAL, "no limits: the pod needs no cgroup of its own");
  if (unified_host()) return place_v2(limits, uuid);
  return place_v1(limits, uuid, rootless);
}

}  // namespace pod::runtime
