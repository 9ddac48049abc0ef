// pod list | status | stop | enter | rm | gc: the lifecycle of recorded pods.
// list, status, stop and enter read the records with a plain open of the store: they
// must not enter the store's user namespace (a process inside a fresh one cannot join
// the pod's namespaces, nor signal a root-owned init). rm and gc remove files owned by
// the pod's ids, so they go through open_store(), inside that namespace for users.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "context.hpp"
#include "run_maps.hpp"
#include "run_net.hpp"
#include "pod/idmap/ledger.hpp"
#include "pod/runtime/cgroup.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/runtime/spawn.hpp"
#include "pod/shift/cache.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

using json = nlohmann::json;

namespace {

// Exit status of `pod enter` when pod itself fails, as `pod run`.
constexpr int kPodFailed = 125;

sys::Result<std::string> store_path() {
  if (!globals().root.empty()) return globals().root;
  return cas::default_store_path();
}

// The store opened for reading records; an invalid Fd when it does not exist yet.
sys::Result<sys::Fd> plain_store() {
  std::string path = POD_TRY(store_path());
  auto fd = sys::open_dir(sys::FdRef::cwd(), path);
  if (!fd && fd.error().code == ENOENT) return sys::Fd();
  if (!fd) return sys::Unexpected(std::move(fd.error()).context("opening the store '{}'", path));
  return fd;
}

sys::Result<runtime::PodInfo> find_plain(const std::string& which) {
  sys::Fd store = POD_TRY(plain_store());
  if (!store.valid()) return sys::make_error(ENOENT, "no pod '{}'", which);
  return runtime::find_pod(store, which);
}

std::string label(const runtime::PodRecord& r) { return fmt::format("pod {} ({})", r.name, r.uuid); }

json exit_json(const runtime::PodInfo& p) { return p.exit ? json(p.exit->exit) : json(nullptr); }

std::string image_of(const runtime::PodRecord& r) {
  if (r.apps.empty()) return "-";
  std::string s = r.apps[0].image.empty() ? r.apps[0].image_digest : r.apps[0].image;
  if (r.apps.size() > 1) s += fmt::format(" +{}", r.apps.size() - 1);
  return s;
}

// "100000/65536": host start and count of each extent of the uid map.
std::string ranges_of(const idmap::IdMap& m) {
  if (m.extents.empty()) return "-";
  std::string s;
  for (auto& e : m.extents) s += fmt::format("{}{}/{}", s.empty() ? "" : ",", e.outer, e.count);
  return s;
}

int run_list(bool as_json) {
  auto store = plain_store();
  if (!store) return report(store.error());
  std::vector<runtime::PodInfo> pods;
  std::vector<std::string> damaged;
  if (store->valid()) {
    auto l = runtime::list_pods(*store, &damaged);
    if (!l) return report(l.error());
    pods = std::move(*l);
  }
  for (auto& d : damaged) warn(d + " (`pod rm UUID` removes it)");
  if (as_json) {
    json out = json::array();
    for (auto& p : pods)
      out.push_back({{"name", p.record.name},
                     {"uuid", p.record.uuid},
                     {"state", runtime::state_name(p.state)},
                     {"image", p.record.apps.empty() ? "" : p.record.apps[0].image},
                     {"pid", p.record.pid},
                     {"exit", exit_json(p)}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %-36s %-9s %-24s %-8s %-5s %s\n", "NAME", "UUID", "STATE", "IMAGE", "PID", "EXIT", "RANGES");
  for (auto& p : pods) {
    auto& r = p.record;
    std::string pid = r.pid ? std::to_string(r.pid) : "-";
    std::string ex = p.exit ? std::to_string(p.exit->exit) : "-";
    std::printf("%-20s %-36s %-9s %-24s %-8s %-5s %s\n", r.name.c_str(), r.uuid.c_str(), runtime::state_name(p.state),
                image_of(r).c_str(), pid.c_str(), ex.c_str(), ranges_of(r.uids).c_str());
  }
  return 0;
}

// How an app ended, from status.json: "exit 3", "signal 9", or nullopt.
std::optional<sys::ExitStatus> app_exit(const runtime::PodInfo& p, const std::string& name) {
  if (!p.exit) return std::nullopt;
  for (auto& a : p.exit->apps)
    if (a.name == name) return a.status;
  return std::nullopt;
}

int run_status(const std::string& which, bool as_json) {
  auto p = find_plain(which);
  if (!p) return report(p.error());
  auto& r = p->record;
  if (!p->damaged.empty()) {
    if (as_json) {
      std::printf("%s\n", json{{"uuid", r.uuid}, {"damaged", p->damaged}}.dump(2).c_str());
      return 1;
    }
    return report({EINVAL, fmt::format("pod {}: {} (`pod rm {}` removes it)", r.uuid, p->damaged, r.uuid)});
  }
  std::optional<std::string> netns;
  if (auto store = plain_store(); store && store->valid()) {
    std::string rel = fmt::format("pods/{}/ns/net", r.uuid);
    if (r.net.netns_bound && sys::exists_at(*store, rel)) netns = *store_path() + "/" + rel;
  }
  // Read while the pod's cgroups exist: from its end until rm or gc.
  std::optional<std::uint64_t> oom = runtime::oom_kills(r.cgroups);
  // A user's pod: its namespace is bound nowhere (its mount namespace was `pod run`'s),
  // only the init's /proc path names it, while it runs.
  if (!netns && r.net.active && !r.net.netns.empty() && p->state == runtime::PodState::running)
    netns = r.net.netns;
  if (as_json) {
    json apps = json::array();
    for (auto& a : r.apps) {
      auto ex = app_exit(*p, a.app.name);
      apps.push_back({{"name", a.app.name},
                      {"image", a.image},
                      {"image_digest", a.image_digest},
                      {"argv", a.app.argv},
                      {"uid", a.app.uid},
                      {"gid", a.app.gid},
                      {"pid", a.pid},
                      {"exit", ex ? json(ex->code) : json(nullptr)},
                      {"signal", ex ? json(ex->signal) : json(nullptr)}});
    }
    json j{{"name", r.name},         {"uuid", r.uuid},         {"state", runtime::state_name(p->state)},
           {"pid", r.pid},           {"exit", exit_json(*p)},  {"created", r.created},
           {"hostname", r.hostname}, {"uid_map", r.uids.str()}, {"gid_map", r.gids.str()},
           {"userns", r.userns},     {"lease", r.lease.empty() ? json(nullptr) : json(r.lease)},
           {"shift", r.shift},       {"rootless", r.rootless}, {"netns", netns ? json(*netns) : json(nullptr)},
           {"net", {{"mode", r.net.mode}, {"network", r.net.network}, {"address", r.net.address},
                    {"ports", r.net.ports}, {"rate", r.net.rate}, {"helper", r.net.helper},
                    {"helper_pid", r.net.helper_pid}, {"forwarder_pid", r.net.forwarder_pid},
                    {"active", r.net.active}}},
           {"cgroups", r.cgroups},   {"oom_killed", oom ? json(*oom > 0) : json(nullptr)},
           {"oom_kills", oom ? json(*oom) : json(nullptr)},
           {"apps", apps}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string state = runtime::state_name(p->state);
  if (p->exit) state += fmt::format(" (exit {})", p->exit->exit);
  std::printf("name:     %s\nuuid:     %s\nstate:    %s\n", r.name.c_str(), r.uuid.c_str(), state.c_str());
  std::printf("pid:      %s\n", r.pid ? std::to_string(r.pid).c_str() : "-");
  std::printf("created:  %s\nhostname: %s\n", r.created.c_str(), r.hostname.c_str());
  std::printf("uid map:  %s\ngid map:  %s\n", r.uids.str().c_str(), r.gids.str().c_str());
  std::printf("userns:   %s%s\n", r.userns.c_str(), r.rootless ? " (rootless)" : "");
  std::printf("lease:    %s\n", r.lease.empty() ? "-" : r.lease.c_str());
  std::printf("shift:    %s\n", r.shift.empty() ? "-" : r.shift.c_str());
  std::printf("net:      %s%s%s\n", r.net.mode.c_str(), r.net.network.empty() ? "" : (" " + r.net.network).c_str(),
              r.net.address.empty() ? "" : (", address " + r.net.address).c_str());
  for (const auto& port : r.net.ports) std::printf("port:     %s\n", port.c_str());
  if (!r.net.helper.empty() && r.net.active)
    std::printf("helper:   %s (pid %d)\n", r.net.helper.c_str(), static_cast<int>(r.net.helper_pid));
  if (netns)
    std::printf("netns:    %s%s\n", netns->c_str(),
                r.net.netns_bound ? "" : " (the init's, while it runs: a user's pod binds it nowhere)");
  std::printf("cgroup:   %s\n", r.cgroups.empty() ? "- (no limits)" : fmt::format("{}", fmt::join(r.cgroups, " ")).c_str());
  if (oom) std::printf("oom:      %s\n", *oom ? fmt::format("killed by the OOM killer ({} kill{})", *oom, *oom == 1 ? "" : "s").c_str() : "no OOM kill");
  std::printf("apps:\n");
  for (auto& a : r.apps) {
    auto ex = app_exit(*p, a.app.name);
    std::string how = ex ? ex->describe() : p->state == runtime::PodState::running ? "running" : "-";
    std::printf("  %-16s %-24s pid %-8s %s\n", a.app.name.c_str(), a.image.c_str(),
                a.pid ? std::to_string(a.pid).c_str() : "-", how.c_str());
  }
  return 0;
}

int run_stop(const std::string& which, double timeout) {
  auto p = find_plain(which);
  if (!p) return report(p.error());
  if (!p->damaged.empty()) return report({EINVAL, fmt::format("pod {}: {}", p->record.uuid, p->damaged)});
  if (p->state != runtime::PodState::running && p->record.pid != 0) {
    note(fmt::format("{} is not running", label(p->record)));
    if (auto r = release_network(p->record); !r) return report(r.error());
    return 0;
  }
  if (auto r = runtime::stop_pod(*p, timeout); !r) return report(r.error());
  if (auto r = release_network(p->record); !r) return report(r.error());
  return 0;
}

int run_enter(const std::string& which, const std::string& app_name, std::vector<std::string> cmd) {
  auto fail = [](const sys::Error& e) {
    report(e);
    return kPodFailed;
  };
  auto p = find_plain(which);
  if (!p) return fail(p.error());
  auto& r = p->record;
  if (!p->damaged.empty()) return fail({EINVAL, fmt::format("pod {}: {}", r.uuid, p->damaged)});
  if (p->state != runtime::PodState::running)
    return fail({ESRCH, fmt::format("{} is not running (it is {})", label(r), runtime::state_name(p->state))});
  const runtime::AppRecord* app = r.apps.empty() ? nullptr : &r.apps[0];
  if (!app_name.empty()) {
    app = nullptr;
    for (auto& a : r.apps)
      if (a.app.name == app_name) app = &a;
    if (!app) {
      std::string names;
      for (auto& a : r.apps) names += (names.empty() ? "" : ", ") + a.app.name;
      return fail({ENOENT, fmt::format("{} has no app '{}' (its apps: {})", label(r), app_name, names)});
    }
  }
  if (!app) return fail({ENOENT, fmt::format("{} has no app", label(r))});
  bool host_root = false;
  for (const auto& e : r.uids.extents) host_root = host_root || e.outer == 0;
  if (auto s = seal_exe_if_exposed(host_root); !s) return fail(s.error());
  auto pidfd = runtime::open_app(r, *app);
  if (!pidfd) return fail(pidfd.error());
  runtime::App a = app->app;
  a.argv = cmd.empty() ? std::vector<std::string>{"/bin/sh"} : std::move(cmd);
  auto st = runtime::enter(*pidfd, a, ::isatty(0) == 1, runtime::cgroup_procs_files(r.cgroups, r.uuid));
  if (!st) return fail(std::move(st.error()).context("entering {}", label(r)));
  return runtime::exit_code_of(*st);
}

// What removing a pod releases outside its directory: its lease and shifted trees.
runtime::Releasers releasers(const cas::Store& store) {
  runtime::Releasers rel;
  std::string path = store.path();
  sys::FdRef dir = store.dir();
  rel.release_lease = [path, dir](const runtime::PodRecord& r) -> sys::Result<void> {
    if (r.lease.empty()) return {};
    sys::Fd ledger = POD_TRY(idmap::open_ledger_dir(path));
    auto res = idmap::release(ledger, r.lease, lease_files_in_use(dir));
    if (!res && res.error().code == ENOENT) return {};  // released by hand already
    if (!res) return sys::Unexpected(std::move(res.error()));
    if (res->quarantined)
      warn(fmt::format("lease '{}' is quarantined: files owned by its ids remain ({})", r.lease, res->path));
    return {};
  };
  rel.release_shifted = [dir](const runtime::PodRecord& r) -> sys::Result<void> {
    if (r.shift_keys.empty() || !sys::exists_at(dir, "shifted")) return {};
    sys::Fd shifted = POD_TRY(sys::open_dir(dir, "shifted"));
    shift::ShiftCache cache(shifted);
    for (auto& key : r.shift_keys) POD_TRY_CTX(cache.release(key, r.uuid), "shifted tree {}", key);
    return {};
  };
  return rel;
}

int run_rm(const std::vector<std::string>& which) {
  auto os = open_store(sys::FileLock::Mode::shared);
  if (!os) return report(os.error());
  auto rel = releasers(os->store);
  int rc = 0;
  for (auto& w : which) {
    auto p = runtime::find_pod(os->store.dir(), w);
    if (!p) {
      rc = report(p.error());
      continue;
    }
    if (auto r = runtime::remove_pod(os->store.dir(), *p, rel); !r) {
      rc = report(r.error());
      continue;
    }
    std::printf("%s\n", p->record.uuid.c_str());
  }
  return rc;
}

int run_gc() {
  auto os = open_store(sys::FileLock::Mode::shared);
  if (!os) return report(os.error());
  std::vector<sys::Error> failed;
  auto removed = runtime::gc_pods(os->store.dir(), releasers(os->store), &failed);
  if (!removed) return report(removed.error());
  for (auto& u : *removed) std::printf("%s\n", u.c_str());
  for (auto& e : failed) report(e);
  return failed.empty() ? 0 : 1;
}

}  // namespace

void add_pod_commands(CLI::App& app) {
  static bool list_json = false;
  auto* list = app.add_subcommand("list", "pods: name, uuid, state, image, pid, exit, uid ranges");
  list->add_flag("--json", list_json, "one JSON document");
  list->callback([] { chosen_action() = [] { return run_list(list_json); }; });

  static std::string status_pod;
  static bool status_json = false;
  auto* status = app.add_subcommand("status", "a pod's state, pid, exit codes, maps, lease, netns");
  status->add_option("POD", status_pod, "name, uuid or uuid prefix")->required();
  status->add_flag("--json", status_json, "one JSON document");
  status->callback([] { chosen_action() = [] { return run_status(status_pod, status_json); }; });

  static std::string stop_pod;
  static double stop_timeout = 10;
  auto* stop = app.add_subcommand("stop", "SIGTERM to the pod's init, SIGKILL after the timeout");
  stop->add_option("POD", stop_pod, "name, uuid or uuid prefix")->required();
  stop->add_option("--timeout", stop_timeout, "seconds before SIGKILL")->capture_default_str()->check(CLI::NonNegativeNumber);
  stop->callback([] { chosen_action() = [] { return run_stop(stop_pod, stop_timeout); }; });

  static std::string enter_pod, enter_app;
  static std::vector<std::string> enter_cmd;
  auto* enter = app.add_subcommand("enter", "run a command in a running app's namespaces: POD [-- CMD ARG...]");
  enter->add_option("POD", enter_pod, "name, uuid or uuid prefix")->required();
  enter->add_option("--app", enter_app, "the app to enter (default: the first)");
  enter->add_option("CMD", enter_cmd, "command and arguments (default: /bin/sh)");
  enter->callback([] { chosen_action() = [] { return run_enter(enter_pod, enter_app, enter_cmd); }; });

  static std::vector<std::string> rm_pods;
  auto* rm = app.add_subcommand("rm", "remove stopped pods, their leases and shifted trees");
  rm->add_option("POD", rm_pods, "name, uuid or uuid prefix")->required();
  rm->callback([] { chosen_action() = [] { return run_rm(rm_pods); }; });

  auto* gc = app.add_subcommand("gc", "remove exited and abandoned pods; prints each uuid removed");
  gc->callback([] { chosen_action() = [] { return run_gc(); }; });
}

}  // namespace pod::cmd
