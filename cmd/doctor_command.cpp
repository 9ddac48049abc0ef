// pod doctor: what this machine allows for pods, as checks that say "ok" or name the
// gap and its fix. It is a report: gaps are not errors (exit 0); only a failure to
// look (no store path) is. It never enters the store's user namespace: the probes run
// in throwaway children under STORE/tmp, opened with a plain open.
#include <fcntl.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fmt/ranges.h>
#include <tuple>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "context.hpp"
#include "pod/idmap/allotment.hpp"
#include "pod/overlay/probe.hpp"
#include "pod/runtime/cgroup.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

namespace {

using json = nlohmann::json;

struct Check {
  std::string id;      // stable key for --json
  std::string title;   // shown in the table
  std::string status;  // "ok", "no" or "missing"
  std::string detail;
  std::string fix;     // empty when ok
};

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  bool root = false;
};

Caller who() {
  Caller c;
  c.uid = ::getuid();
  c.gid = ::getgid();
  c.root = c.uid == 0 && ::geteuid() == 0;
  if (passwd* pw = ::getpwuid(c.uid)) c.name = pw->pw_name;
  else c.name = std::to_string(c.uid);
  return c;
}

std::optional<std::string> read_trimmed(const std::string& path) {
  auto r = sys::read_file(sys::FdRef::cwd(), path, 1 << 16);
  if (!r) return std::nullopt;
  std::string s = *r;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The program in PATH (and the sbin dirs root has), or nullopt.
std::optional<std::string> find_program(const std::string& name) {
  const char* env = std::getenv("PATH");
  return sys::find_program(name, std::string(env ? env : "") + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
}

Check check_userns(const overlay::Probes& probes) {
  Check c{"userns", "user namespaces", "ok", "", ""};
  auto max = read_trimmed("/proc/sys/user/max_user_namespaces");
  auto clone = read_trimmed("/proc/sys/kernel/unprivileged_userns_clone");      // Debian, older kernels
  auto apparmor = read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");  // Ubuntu 23.10+
  c.detail = probes.userns.detail;
  if (max) c.detail += "; user.max_user_namespaces=" + *max;
  if (max && *max == "0") {
    c.status = "no";
    c.fix = "sudo sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)";
  } else if (clone && *clone == "0") {
    c.status = "no";
    c.detail += "; kernel.unprivileged_userns_clone=0";
    c.fix = "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)";
  } else if (!probes.userns.ok) {
    c.status = "no";
    c.fix = apparmor && *apparmor == "1"
                ? "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for pod"
                : "allow unprivileged user namespaces (sysctl, seccomp policy or LSM of this system)";
  }
  return c;
}

Check check_helper(const char* name, const Caller& me) {
  Check c{name, name, "ok", "", ""};
  auto path = find_program(name);
  if (!path) {
    c.status = "missing";
    c.detail = me.root ? "root writes maps directly; ordinary users need it" : "needed to map subordinate ids";
    c.fix = "sudo apt-get install uidmap";
    return c;
  }
  struct stat st {};
  if (::stat(path->c_str(), &st) != 0) return {name, name, "no", fmt::format("{}: cannot stat", *path), ""};
  bool suid = st.st_uid == 0 && (st.st_mode & S_ISUID);
  bool caps = ::getxattr(path->c_str(), "security.capability", nullptr, 0) > 0;
  if (suid) c.detail = *path + ", setuid root";
  else if (caps) c.detail = *path + ", with file capabilities";
  else {
    c.status = "no";
    c.detail = *path + " is neither setuid root nor given file capabilities";
    c.fix = fmt::format("sudo chmod u+s {} (or: sudo setcap cap_set{}id+ep {})", *path,
                        std::string_view(name).starts_with("newuid") ? "u" : "g", *path);
  }
  return c;
}

Check check_subids(const Caller& me, const std::string& store) {
  Check c{"subids", "subordinate ranges", "ok", "", ""};
  idmap::HostIds host = idmap::read_host_ids([](const std::string& w) { warn(w); });
  if (me.root) {
    auto config = sys::read_file(sys::FdRef::cwd(), store + "/idmap/pool.json", 1 << 20);
    auto a = idmap::root_allotment(host, config ? std::optional<std::string>(*config) : std::nullopt);
    if (!a) return {c.id, c.title, "no", a.error().what(), fmt::format("fix {}/idmap/pool.json", store)};
    c.detail = fmt::format("root's pool (from {}): uids {}, gids {}", a->source, a->uids.str(), a->gids.str());
    return c;
  }
  auto a = idmap::user_allotment(host, me.name, me.uid);
  if (!a || a->uids.empty() || a->gids.empty()) {
    c.status = "missing";
    c.detail = fmt::format("{} has no subordinate uids/gids in /etc/subuid and /etc/subgid: pods can map only "
                           "your own id", me.name);
    c.fix = fmt::format("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}", me.name);
    return c;
  }
  c.detail = fmt::format("{}: uids {}, gids {}", me.name, a->uids.str(), a->gids.str());
  return c;
}

Check from_probe(const char* id, const char* title, const overlay::Probe& p, std::string fix) {
  return {id, title, p.ok ? "ok" : "no", p.detail, p.ok ? "" : std::move(fix)};
}

// cgroup2 at /sys/fs/cgroup (unified), or v1 with perhaps a cgroup2 beside it (hybrid).
struct CgroupLayout {
  std::string version;  // "2", "hybrid", "1", "none"
  std::string v2_mount;  // where cgroup2 is mounted, if anywhere
};

bool is_cgroup2(const std::string& path) {
  struct statfs s {};
  return ::statfs(path.c_str(), &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

CgroupLayout cgroup_layout() {
  if (is_cgroup2("/sys/fs/cgroup")) return {"2", "/sys/fs/cgroup"};
  struct statfs s {};
  if (::statfs("/sys/fs/cgroup", &s) != 0) return {"none", ""};
  if (is_cgroup2("/sys/fs/cgroup/unified")) return {"hybrid", "/sys/fs/cgroup/unified"};
  return {"1", ""};
}

std::string own_cgroup2_path() {
  auto text = read_trimmed("/proc/self/cgroup");
  if (!text) return "/";
  std::stringstream ss(*text);
  for (std::string line; std::getline(ss, line);)
    if (line.starts_with("0::")) return line.substr(3);
  return "/";
}

constexpr const char* kDelegateFix =
    "a systemd drop-in with Delegate=yes for user@.service: sudo mkdir -p /etc/systemd/system/user@.service.d && "
    "printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee "
    "/etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload (then log in again)";

std::vector<Check> check_cgroups(const Caller& me) {
  CgroupLayout l = cgroup_layout();
  Check v{"cgroup", "cgroup version", "ok", "", ""};
  Check d{"cgroup_delegation", "cgroup controllers", "ok", "", ""};
  if (l.version == "none") {
    v.status = "missing";
    v.detail = "no cgroup filesystem at /sys/fs/cgroup";
    v.fix = "mount cgroup2 at /sys/fs/cgroup (systemd does this at boot)";
    d.status = "no";
    d.detail = "no cgroups: pods run without limits";
    return {v, d};
  }
  std::string controllers;
  if (!l.v2_mount.empty()) controllers = read_trimmed(l.v2_mount + "/cgroup.controllers").value_or("");
  if (l.version == "2") {
    v.detail = "cgroup v2 (unified) at /sys/fs/cgroup";
  } else {
    v.status = me.root ? "ok" : "no";
    v.detail = l.version == "hybrid"
                   ? fmt::format("cgroup v1 (hybrid: cgroup2 at {} holds only '{}')", l.v2_mount, controllers)
                   : "cgroup v1";
    if (!me.root) v.fix = "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2, which can be delegated";
  }
  if (l.version != "2") {
    if (me.root) {
      d.detail = "root uses the cgroup v1 controllers directly";
    } else {
      d.status = "no";
      d.detail = "cgroup v1 controllers are not delegated to ordinary users: pods run without limits";
      d.fix = "switch to cgroup v2 (systemd.unified_cgroup_hierarchy=1), then " + std::string(kDelegateFix);
    }
    return {v, d};
  }
  std::string rel = own_cgroup2_path();
  if (me.root) {
    d.detail = fmt::format("root: every controller ({})", controllers);
    return {v, d};
  }
  // The subtree pod run places pods in (runtime/src/cgroup_place.cpp), as pod run finds it.
  auto deleg = runtime::delegated_cgroup();
  if (!deleg) {
    d.status = "no";
    d.detail = fmt::format("your cgroup {} is not delegated to you: pods run, limits are refused", rel);
    d.fix = kDelegateFix;
    return {v, d};
  }
  std::string mine = fmt::format("{}", fmt::join(deleg->controllers, " "));
  std::string top = deleg->dir.substr(l.v2_mount.size());
  d.detail = fmt::format("delegated in {}: {}", top.empty() ? "/" : top, mine.empty() ? "none" : mine);
  for (const char* want : {"memory", "pids", "cpu"})
    if (std::find(deleg->controllers.begin(), deleg->controllers.end(), want) == deleg->controllers.end()) {
      d.status = "no";
      d.detail += fmt::format("; '{}' is not delegated", want);
      d.fix = kDelegateFix;
    }
  return {v, d};
}

Check check_tun() {
  Check c{"tun", "/dev/net/tun", "ok", "opens read-write", ""};
  sys::Fd f(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (f) return c;
  int err = errno;
  c.detail = fmt::format("open: {}", sys::errno_name(err));
  if (err == ENOENT) {
    c.status = "missing";
    c.fix = "sudo modprobe tun";
  } else {
    c.status = "no";
    c.fix = "sudo chmod 0666 /dev/net/tun (as most distributions ship it)";
  }
  return c;
}

Check check_program(const char* id, const char* title, const std::string& program, const char* package,
                    const char* what) {
  auto path = program.starts_with("/") ? (::access(program.c_str(), X_OK) == 0 ? std::optional(program) : std::nullopt)
                                       : find_program(program);
  if (path) return {id, title, "ok", *path, ""};
  return {id, title, "missing", what, fmt::format("sudo apt-get install {}", package)};
}

// The store, or where it will be: probes must run on its filesystem.
struct ScratchPlace {
  sys::Fd dir;
  std::string where;
};

sys::Result<ScratchPlace> scratch_place(const std::string& store) {
  if (auto tmp = sys::open_dir(sys::FdRef::cwd(), store + "/tmp")) return ScratchPlace{std::move(*tmp), store + "/tmp"};
  // No store yet: its nearest existing parent is on the filesystem it will be made on.
  std::string p = store;
  while (!p.empty()) {
    auto slash = p.find_last_of('/');
    p = slash == 0 ? "/" : p.substr(0, slash == std::string::npos ? 0 : slash);
    if (p.empty()) p = ".";
    if (auto d = sys::open_dir(sys::FdRef::cwd(), p)) return ScratchPlace{std::move(*d), p};
    if (p == "/" || p == ".") break;
  }
  return sys::make_error(ENOENT, "no directory to probe the store's filesystem in ('{}')", store);
}

int run_doctor(bool as_json) {
  Caller me = who();
  std::string store = globals().root;
  if (store.empty()) {
    auto p = cas::default_store_path();
    if (!p) return report(std::move(p.error()).context("finding the store"));
    store = *p;
  }
  auto place = scratch_place(store);
  if (!place) return report(place.error());
  // A scratch of our own: run_probes makes its directories inside and removes them.
  auto scratch_name = sys::make_temp_dir(place->dir, ".pod-doctor-");
  if (!scratch_name) return report(std::move(scratch_name.error()).context("probing in '{}'", place->where));
  overlay::Probes probes;
  if (auto scratch = sys::open_dir(place->dir, *scratch_name)) probes = overlay::run_probes(*scratch);
  (void)sys::remove_tree(place->dir, *scratch_name);

  std::vector<Check> checks;
  checks.push_back(check_userns(probes));
  checks.push_back(check_helper("newuidmap", me));
  checks.push_back(check_helper("newgidmap", me));
  checks.push_back(check_subids(me, store));
  checks.push_back(from_probe("overlay_in_userns", "overlay in a user namespace", probes.overlay_in_userns,
                              "Linux 5.11 or later (overlayfs with userxattr); meanwhile pods use flattened copies"));
  checks.push_back(from_probe("idmapped_store", "idmapped mounts of the store", probes.idmapped_store,
                              me.root ? "put the store on a filesystem with idmapped mounts (ext4, xfs, btrfs, tmpfs)"
                                      : "none needed: without root, pods use --shift=chown (shifted copies)"));
  checks.push_back(from_probe("overlay_over_idmapped", "overlay over idmapped mounts", probes.overlay_over_idmapped,
                              me.root ? "Linux 5.19 or later" : "none needed: pods use --shift=chown"));
  checks.push_back(from_probe("lowerdir_plus", "overlay lowerdir+", probes.lowerdir_plus,
                              "Linux 6.8 or later, for images of many layers"));
  checks.push_back(from_probe("metacopy_lowers", "overlay metacopy layers", probes.metacopy_lowers,
                              me.root ? "Linux 4.19 or later: meanwhile --shift=chown copies each layer's data"
                                      : "none needed: without root, --shift=chown copies each layer's data"));
  for (auto& c : check_cgroups(me)) checks.push_back(std::move(c));
  checks.push_back(check_tun());
  checks.push_back(check_program("pasta", "pasta (network)", "pasta", "passt",
                                 "user-mode networking for rootless pods"));
  checks.push_back(check_program("slirp4netns", "slirp4netns (network)", "slirp4netns", "slirp4netns",
                                 "user-mode networking for rootless pods (older than pasta)"));
  if (me.root)
    checks.push_back(check_program("cni_bridge", "CNI bridge (network)", "/usr/lib/cni/bridge",
                                   "containernetworking-plugins", "bridged networking for root's pods"));
  if (me.root)
    for (auto [id, title, plugin, what] :
         {std::tuple{"cni_host_local", "CNI host-local (network)", "host-local", "addresses on bridge networks"},
          std::tuple{"cni_portmap", "CNI portmap (network)", "portmap", "--port on bridge networks"},
          std::tuple{"cni_bandwidth", "CNI bandwidth (network)", "bandwidth", "--net-rate on bridge networks"}})
      checks.push_back(check_program(id, title, fmt::format("/usr/lib/cni/{}", plugin), "containernetworking-plugins",
                                     what));

  if (as_json) {
    json out = {{"user", me.name}, {"uid", me.uid}, {"store", store}, {"probed_in", place->where},
                {"checks", json::array()}};
    for (auto& c : checks)
      out["checks"].push_back({{"check", c.id}, {"title", c.title}, {"status", c.status}, {"detail", c.detail},
                               {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("pod doctor: user %s (uid %u), store %s\n", me.name.c_str(), me.uid, store.c_str());
  for (auto& c : checks) {
    std::printf("%-30s %-8s %s\n", c.title.c_str(), c.status.c_str(), c.detail.c_str());
    if (!c.fix.empty()) std::printf("    fix: %s\n", c.fix.c_str());
  }
  return 0;
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("doctor", "what this machine allows for pods, each gap with its fix");
  static bool as_json = false;
  cmd->add_flag("--json", as_json, "machine-readable output");
  cmd->callback([] { chosen_action() = [] { return run_doctor(as_json); }; });
}

}  // namespace pod::cmd
